// Package verify checks a Cairn log the way an outside auditor would: from
// its entries, its signed checkpoints and its verifier keys alone, with the
// transparency-log ecosystem's own libraries.
//
// It rebuilds the RFC 6962 tree from the entries (golang.org/x/mod/sumdb/tlog),
// checks every checkpoint's signature (filippo.io/torchwood, over
// golang.org/x/mod/sumdb/note), compares the root at every checkpoint size,
// checks consistency between checkpoints with transparency-dev/merkle's
// proof verifier, compares the log's Merkle tiles with the rebuilt tree, and
// verifies C2SP tlog-proof receipts (torchwood.VerifyProof, parsed with
// transparency-dev/formats).
//
// It must never import any Cairn package, not even the root one: a
// verifier that shares code with the server it checks would share its
// bugs. A test enforces this with go list.
//
// Verification failures are results ([Problem]s in a [Result]), not errors;
// an error means the check could not be carried out (unreadable input, a
// network failure, a malformed key).
package verify

package cairn

import (
	"strconv"
)

// maxSeqDigits is the number of decimal digits of the largest sequence number
// a leaf can carry (2^53-1, the largest integer I-JSON represents exactly).
const maxSeqDigits = 16

// seqKey is inserted between Head and Tail.
const seqKey = `,"seq":`

// Leaf is an event's canonical RFC 8785 JSON split around the "seq" member,
// which is only known when the event is committed. Everything expensive
// (validation, redaction, canonicalisation) happens before the commit;
// the committer only splices in the number:
//
//	Head + `,"seq":` + decimal(seq) + Tail
//
// Head starts with "{" and holds the members whose names sort before "seq";
// Tail holds the remaining members (each preceded by ",") and the closing "}".
type Leaf struct {
	Head []byte
	Tail []byte
}

// Bytes returns the canonical leaf for sequence number seq.
func (l Leaf) Bytes(seq int64) []byte {
	return l.AppendBytes(make([]byte, 0, l.MaxLen()), seq)
}

// AppendBytes appends the canonical leaf for seq to dst.
func (l Leaf) AppendBytes(dst []byte, seq int64) []byte {
	dst = append(dst, l.Head...)
	dst = append(dst, seqKey...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, l.Tail...)
}

// MaxLen is the length of the leaf with the longest possible sequence number.
// Ingest rejects events whose MaxLen exceeds MaxLeafSize, so every sequence
// number produces a leaf that fits an entry bundle.
func (l Leaf) MaxLen() int {
	return len(l.Head) + len(seqKey) + maxSeqDigits + len(l.Tail)
}

package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// State remembers, per origin, the newest checkpoint a verifier accepted,
// so that a later run can tell a log that only grew from one that was
// rolled back (smaller than before) or forked (another tree at a size seen
// before): the split view a consistency proof alone does not rule out for
// someone who forgets what they saw.
//
// It is a directory holding one file per origin, named by the hex SHA-256
// of the origin, containing the signed checkpoint verbatim. Files are
// replaced atomically.
type State struct {
	dir string
}

// OpenState opens (creating) a state directory.
func OpenState(dir string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &State{dir: dir}, nil
}

func (s *State) path(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, hex.EncodeToString(h[:]))
}

// Remembered is the checkpoint a State holds for an origin.
type Remembered struct {
	Size int64
	Root tlog.Hash
	Note []byte
}

// Load returns the checkpoint remembered for origin, or nil if none.
func (s *State) Load(origin string) (*Remembered, error) {
	data, err := readLimited(s.path(origin), maxNoteSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	text, _, ok := strings.Cut(string(data), "\n\n")
	c, err := torchwood.ParseCheckpoint(text + "\n")
	if !ok || err != nil || c.Origin != origin {
		return nil, fmt.Errorf("state file %s does not hold a checkpoint of %s", s.path(origin), origin)
	}
	return &Remembered{Size: c.N, Root: c.Hash, Note: data}, nil
}

// Save remembers a verified checkpoint for origin.
func (s *State) Save(origin string, signed []byte) error {
	f, err := os.CreateTemp(s.dir, ".state-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(signed); err != nil {
		f.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(f.Name(), s.path(origin)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Compare checks a newly verified checkpoint against the remembered one.
// rootAt, if set, gives the root of the log at a smaller size from
// verified material (the rebuilt tree, or a checked consistency proof);
// without it a checkpoint larger than the remembered one cannot be
// connected to it. The returned problem is nil when cp extends what was
// remembered (or nothing was).
func (s *State) Compare(origin string, cp *Checkpoint, rootAt func(size int64) (tlog.Hash, error)) (*Problem, *Remembered, error) {
	prev, err := s.Load(origin)
	if err != nil || prev == nil {
		return nil, prev, err
	}
	size := prev.Size
	problem := func(format string, args ...any) (*Problem, *Remembered, error) {
		return &Problem{Check: CheckState, Size: &size, Message: fmt.Sprintf(format, args...)}, prev, nil
	}
	b64 := func(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
	switch {
	case cp.Size < prev.Size:
		return problem("ROLLBACK: the log's newest checkpoint has size %d, but a checkpoint of size %d was verified before",
			cp.Size, prev.Size)
	case cp.Size == prev.Size && cp.Root != prev.Root:
		return problem("FORK: the log's checkpoint of size %d has root %s, but the one verified before has root %s",
			cp.Size, b64(cp.Root), b64(prev.Root))
	case cp.Size == prev.Size:
		return nil, prev, nil
	case rootAt == nil:
		return problem("cannot connect the checkpoint of size %d to the one of size %d verified before without a consistency proof",
			cp.Size, prev.Size)
	}
	root, err := rootAt(prev.Size)
	if err != nil {
		return problem("cannot connect the checkpoint of size %d to the one of size %d verified before: %v", cp.Size, prev.Size, err)
	}
	if root != prev.Root {
		return problem("FORK: at size %d the log now has root %s, but the checkpoint verified before has root %s: "+
			"the log was rolled back and rewritten", prev.Size, b64(root), b64(prev.Root))
	}
	return nil, prev, nil
}

// check compares a verified log with the state and advances the state
// when the log is valid.
func (s *State) check(res *Result) error {
	var rootAt func(int64) (tlog.Hash, error)
	if res.tree != nil {
		rootAt = res.RootAt
	}
	p, _, err := s.Compare(res.Origin, res.Latest, rootAt)
	if err != nil {
		return err
	}
	if p != nil {
		res.Problems = append(res.Problems, *p)
		return nil
	}
	if res.Valid() {
		return s.Save(res.Origin, res.Latest.Note)
	}
	return nil
}

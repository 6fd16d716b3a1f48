package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// An export bundle is a directory laid out like a C2SP tlog-tiles log,
// plus the checkpoint history and a manifest:
//
//	manifest.json             Manifest (informational: nothing in it is trusted)
//	checkpoint                the newest signed checkpoint
//	keys                      the log's verifier keys, one per line
//	checkpoints/<size>        every signed checkpoint, verbatim
//	tile/entries/<N>[.p/<W>]  entry bundles
//	tile/<L>/<N>[.p/<W>]      Merkle tiles of the newest checkpoint's tree
//
// Because the tiles follow tlog-tiles, any tlog-tiles client (torchwood's
// TileFS, Tessera's fsck over a file server) can read the directory too.
const (
	ManifestFile   = "manifest.json"
	CheckpointFile = "checkpoint"
	KeysFile       = "keys"
	CheckpointsDir = "checkpoints"
)

// ManifestFormat names the bundle layout version.
const ManifestFormat = "cairn-export/v1"

// Manifest describes an export bundle. It is not signed: a verifier uses it
// only to say what it expected, never to decide what is valid.
type Manifest struct {
	Format      string    `json:"format"`
	Origin      string    `json:"origin"`
	Org         string    `json:"org"`
	Context     string    `json:"context"`
	TreeSize    int64     `json:"tree_size"`
	Root        string    `json:"root"`
	Checkpoints int       `json:"checkpoints"`
	Keys        []string  `json:"keys"`
	ExportedAt  time.Time `json:"exported_at"`
}

// MaxManifestSize bounds a manifest; a real one is well under 2 KiB.
const MaxManifestSize = 64 << 10

// ParseManifest parses and checks a manifest: the format, a non-negative
// size, a 32-byte base64 root and a non-empty origin. Unknown fields are
// rejected so a newer layout is not misread as this one.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is larger than %d bytes", MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("manifest: trailing data")
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("manifest: format %q, want %q", m.Format, ManifestFormat)
	}
	if m.Origin == "" || strings.ContainsAny(m.Origin, " +\n") {
		return nil, fmt.Errorf("manifest: bad origin %q", m.Origin)
	}
	if m.TreeSize < 0 || m.Checkpoints < 0 {
		return nil, errors.New("manifest: negative count")
	}
	if r, err := base64.StdEncoding.DecodeString(m.Root); err != nil || len(r) != tlog.HashSize {
		return nil, errors.New("manifest: root is not a base64 SHA-256 hash")
	}
	return &m, nil
}

// MarshalManifest encodes m as it is written into a bundle.
func MarshalManifest(m *Manifest) []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// CheckpointPath returns the bundle path of the checkpoint of a size.
func CheckpointPath(size int64) string {
	return CheckpointsDir + "/" + strconv.FormatInt(size, 10)
}

// maxNoteSize bounds a checkpoint file: a note with dozens of cosignatures
// is a few KiB.
const maxNoteSize = 1 << 20

// Dir is a Source reading an export bundle from a directory.
type Dir struct {
	root string
}

// OpenDir returns a Source for the bundle in dir.
func OpenDir(dir string) (*Dir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &Dir{root: dir}, nil
}

// Manifest reads the bundle's manifest.
func (d *Dir) Manifest() (*Manifest, error) {
	data, err := readLimited(filepath.Join(d.root, ManifestFile), MaxManifestSize)
	if err != nil {
		return nil, err
	}
	return ParseManifest(data)
}

// ReadTile implements Source.
func (d *Dir) ReadTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(torchwood.TilePath(t))))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", torchwood.TilePath(t), ErrMissing)
	}
	return data, err
}

// Checkpoints implements Source: every file under checkpoints/, and the
// checkpoint file.
func (d *Dir) Checkpoints(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	ents, err := os.ReadDir(filepath.Join(d.root, CheckpointsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := readLimited(filepath.Join(d.root, CheckpointsDir, e.Name()), maxNoteSize)
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	latest, err := readLimited(filepath.Join(d.root, CheckpointFile), maxNoteSize)
	switch {
	case err == nil:
		if !slices.ContainsFunc(out, func(b []byte) bool { return bytes.Equal(b, latest) }) {
			out = append(out, latest)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return out, nil
}

// Keys implements Source.
func (d *Dir) Keys(ctx context.Context) ([]string, error) {
	data, err := readLimited(filepath.Join(d.root, KeysFile), maxNoteSize)
	if err != nil {
		return nil, err
	}
	return ParseKeys(data), nil
}

// ParseKeys splits a keys file: one verifier key per line, blank lines and
// lines starting with '#' ignored.
func ParseKeys(data []byte) []string {
	var keys []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

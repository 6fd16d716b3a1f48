package verify

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseManifest: the manifest parser never panics, and what it accepts
// survives a round trip.
func FuzzParseManifest(f *testing.F) {
	f.Add(MarshalManifest(&Manifest{Format: ManifestFormat, Origin: testOrigin, TreeSize: 5,
		Root: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", Keys: []string{"k"}, ExportedAt: time.Unix(0, 0).UTC()}))
	f.Add([]byte(`{"format":"cairn-export/v1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		m2, err := ParseManifest(MarshalManifest(m))
		if err != nil || m2.Origin != m.Origin || m2.TreeSize != m.TreeSize || m2.Root != m.Root {
			t.Fatalf("manifest does not round-trip: %+v / %+v, %v", m, m2, err)
		}
	})
}

// FuzzReceipt: receipts are outside input. Verification never panics, and
// nothing but the genuine receipt for the genuine entry verifies.
func FuzzReceipt(f *testing.F) {
	l := growLog(&testing.T{}, 300)
	good := receiptFor(&testing.T{}, l, 42)
	v, _ := NewVerifier([]string{l.vkey}, "")
	f.Add(good, testEntry(42))
	f.Add(good[:len(good)/2], testEntry(42))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\n"), []byte{})
	f.Fuzz(func(t *testing.T, receipt, leaf []byte) {
		res := v.Receipt(leaf, receipt)
		if res.Valid && !(bytes.Equal(leaf, testEntry(42)) && res.Index == 42) {
			t.Fatalf("accepted a receipt for index %d of %q", res.Index, leaf)
		}
	})
}

// FuzzCheckpoint: checkpoint verification never panics and accepts only
// notes the log's key signed.
func FuzzCheckpoint(f *testing.F) {
	l := growLog(&testing.T{}, 10, 20)
	v, _ := NewVerifier([]string{l.vkey}, "")
	for _, n := range l.notes {
		f.Add(n)
	}
	f.Add([]byte("audit.example.com/acme/payments\n1\nAAAA\n\n— x y\n"))
	f.Fuzz(func(t *testing.T, signed []byte) {
		cp, err := v.Checkpoint(signed)
		if err != nil {
			claimedSize(signed)
			return
		}
		text := func(b []byte) []byte { return b[:bytes.Index(b, []byte("\n\n"))+1] }
		if !bytes.Equal(text(signed), text(l.notes[0])) && !bytes.Equal(text(signed), text(l.notes[1])) {
			t.Fatalf("accepted a checkpoint the log never signed: %q (size %d)", signed, cp.Size)
		}
	})
}

// FuzzExtract: an export stream comes from a server and is outside input.
// Whatever it holds, only bundle paths are written, all inside the target.
func FuzzExtract(f *testing.F) {
	for _, names := range [][]string{
		{"manifest.json", "keys", "checkpoint", "checkpoints/12", "tile/entries/000.p/12", "tile/0/x001/000"},
		{"../escape"}, {"/etc/passwd"}, {"tile/../../x"}, {"tile/0/000/../../../y"}, {"keys", "keys"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, n := range names {
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
		}
		tw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		os.Mkdir(dir, 0o755)
		Extract(bytes.NewReader(data), dir)
		filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			if strings.HasPrefix(rel, "..") || !bundlePath.MatchString(filepath.ToSlash(rel)) {
				t.Fatalf("Extract wrote %s", p)
			}
			return nil
		})
	})
}

package verify

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
)

// bundlePath is every file name an export bundle may contain.
var bundlePath = regexp.MustCompile(`^(manifest\.json|keys|checkpoint|checkpoints/[0-9]{1,19}|tile/(entries|[0-9]{1,2})(/x[0-9]{3})*/[0-9]{3}(\.p/[0-9]{1,3})?)$`)

// maxBundleFile bounds one file: a full entry bundle is 256 × (2 + 65,535)
// bytes.
const maxBundleFile = maxTileSize + 4096

// Extract unpacks an export tar stream (GET .../export) into dir, which
// should be empty, and returns the number of files written. The stream is
// outside input: only regular files with bundle names (see the layout in
// this package) are accepted, none is overwritten, and nothing is written
// outside dir. A stream that ends early is an error.
func Extract(r io.Reader, dir string) (int, error) {
	tr := tar.NewReader(r)
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || name != hdr.Name || !bundlePath.MatchString(name) || hdr.Size > maxBundleFile {
			return n, fmt.Errorf("unexpected file %q in the export", hdr.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return n, err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return n, err
		}
		_, err = io.Copy(f, io.LimitReader(tr, maxBundleFile))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

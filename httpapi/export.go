package httpapi

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/verify"
	"golang.org/x/mod/sumdb/tlog"
)

// ExportContentType is the media type of an export: a POSIX tar stream of
// the bundle described in package verify (entry bundles and Merkle tiles
// in C2SP tlog-tiles layout, every signed checkpoint, the verifier key, a
// manifest).
const ExportContentType = "application/x-tar"

// export streams a context's log as a self-contained bundle, up to its
// latest signed checkpoint. It needs readAudit on every event of the
// context (the route table): an export is the whole log by nature, and a
// grant limited to event groups gets 403 (such a principal reads its
// events through search, trail, event and receipt instead). Files appear in a fixed order: manifest.json,
// keys, checkpoint, checkpoints/<size>..., tile/entries/..., tile/<L>/....
//
// Once the stream has begun, a failure cannot become an error response:
// the connection is aborted instead, so a client sees a broken archive,
// never a complete-looking short one.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	if len(r.URL.Query()) > 0 {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "export takes no query parameters"))
		return
	}
	ctx := r.Context()
	latest, err := s.latestCheckpoint(r, org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.recordRead(r, org, actionExport, contextTarget(name),
		map[string]string{"context": name, "tree_size": strconv.FormatInt(latest.Size, 10)}); err != nil {
		s.error(w, r, err)
		return
	}
	origin, err := s.cfg.Signer.Origin(org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var cps []*cairn.Checkpoint
	for from := int64(0); ; {
		page, err := s.cfg.Store.Checkpoints(ctx, org, name, from, latest.Size, MaxCheckpointPage)
		if err != nil {
			s.error(w, r, err)
			return
		}
		cps = append(cps, page...)
		if len(page) < MaxCheckpointPage {
			break
		}
		from = page[len(page)-1].Size + 1
	}
	vkey := s.cfg.Signer.VerifierKey(origin)
	m := &verify.Manifest{Format: verify.ManifestFormat, Origin: origin, Org: org, Context: name,
		TreeSize: latest.Size, Root: base64.StdEncoding.EncodeToString(latest.Root[:]),
		Checkpoints: len(cps), Keys: []string{vkey}, ExportedAt: s.cfg.Now().UTC()}

	w.Header().Set("Content-Type", ExportContentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-%d.tar"`, org, name, latest.Size))
	tw := tar.NewWriter(w)
	mtime := latest.SignedAt
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	put := func(path string, data []byte) {
		hdr := &tar.Header{Name: path, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err == nil {
			_, err = tw.Write(data)
		}
		if err != nil {
			panic(http.ErrAbortHandler) // the client went away
		}
	}
	abort := func(err error) {
		s.cfg.Logger.Error("export aborted", "request_id", requestID(r), "org", org, "context", name, "err", err)
		panic(http.ErrAbortHandler)
	}
	put(verify.ManifestFile, verify.MarshalManifest(m))
	put(verify.KeysFile, []byte(vkey+"\n"))
	put(verify.CheckpointFile, latest.Note)
	for _, cp := range cps {
		put(verify.CheckpointPath(cp.Size), cp.Note)
	}
	for _, t := range exportTiles(latest.Size) {
		if ctx.Err() != nil {
			panic(http.ErrAbortHandler)
		}
		data, err := merkle.ReadTile(ctx, s.log, org, name, t, latest.Size)
		if err != nil {
			abort(err)
		}
		put(merkle.TilePath(t), data)
	}
	if err := tw.Close(); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// exportTiles lists the entry bundles, then the Merkle tiles, of the tree
// of size n: full tiles, and each level's partial right edge.
func exportTiles(n int64) []tlog.Tile {
	var out []tlog.Tile
	for level := -1; level < 8; level++ {
		count := n
		if level > 0 {
			count = n >> (8 * level)
		}
		if count == 0 {
			break
		}
		for i := int64(0); i*merkle.TileWidth < count; i++ {
			out = append(out, tlog.Tile{H: merkle.TileHeight, L: level, N: i, W: int(min(merkle.TileWidth, count-i*merkle.TileWidth))})
		}
	}
	return out
}

package sqlite

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

type entry struct{ term, gid int64 }

// decodeAll reads pages back into entries, checking each page's size and
// key (its last entry).
func decodeAll(t *testing.T, pages []page) []entry {
	t.Helper()
	var out []entry
	for i, p := range pages {
		if len(p.data) > pageBytes {
			t.Fatalf("page %d holds %d bytes", i, len(p.data))
		}
		var last entry
		rs, _, err := appendRuns(nil, nil, p.data)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		for _, r := range rs {
			for _, g := range r.gids {
				last = entry{r.term, g}
				out = append(out, last)
			}
		}
		if last != (entry{p.term, -p.ngid}) {
			t.Fatalf("page %d: key (%d, %d), last entry %v", i, p.term, -p.ngid, last)
		}
	}
	return out
}

// TestPagesRoundTrip: entries written in (term, gid descending) order read
// back the same, in pages within pageBytes keyed by their last entry; runs
// cross pages, and terms and gids take every varint length.
func TestPagesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var want []entry
	for range 3000 {
		term := int64(r.Uint64())
		n := 1 + r.IntN(3)
		if r.IntN(50) == 0 {
			n = 2000 + r.IntN(5000) // longer than a page
		}
		g := int64(1) << r.IntN(40)
		for range n {
			want = append(want, entry{term, g})
			g += 1 + r.Int64N([]int64{1, 200, 1 << 20}[r.IntN(3)])
		}
	}
	want = append(want, entry{math.MinInt64, 1}, entry{math.MaxInt64, math.MaxInt64 / 2}, entry{0, 5})
	slices.SortFunc(want, func(a, b entry) int { return cmp.Or(cmp.Compare(a.term, b.term), cmp.Compare(b.gid, a.gid)) })
	want = slices.Compact(want)
	w := newPageWriter()
	for _, e := range want {
		w.add(e.term, e.gid)
	}
	pages, err := w.finish()
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeAll(t, pages); !slices.Equal(got, want) {
		t.Fatalf("%d entries read back, %d written, or in another order", len(got), len(want))
	}
	for i := 1; i < len(pages); i++ {
		if a, b := pages[i-1], pages[i]; cmp.Or(cmp.Compare(a.term, b.term), cmp.Compare(a.ngid, b.ngid)) >= 0 {
			t.Fatalf("page keys out of order at %d", i)
		}
	}
	// A merge copies runs: the same entries come out, whatever the pages.
	for _, split := range []int{1, 2, 7} {
		w := newPageWriter()
		for i, p := range pages {
			if i%split != 0 {
				w.endRun()
				w.cut() // page boundaries unlike the source's
			}
			rs, _, err := appendRuns(nil, nil, p.data)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				w.addRun(r)
			}
		}
		copied, err := w.finish()
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, copied); !slices.Equal(got, want) {
			t.Fatalf("runs copied into new pages (split %d) read back differently", split)
		}
	}
	t.Logf("%d entries in %d pages", len(want), len(pages))
}

// TestSegmentBuilder: a batch's pages hold exactly its events' terms, each
// event once per term, including when the term table must grow.
func TestSegmentBuilder(t *testing.T) {
	var b segBuilder
	for _, n := range []int{1, 7, 300} {
		var batch []indexItem
		var want []entry
		for i := range n {
			e := cairn.Event{Context: "app", Action: "doc.update", Kind: cairn.KindUpdate, EventTime: time.Unix(1e9+int64(i), 0),
				Description: "alpha alpha beta"}
			if n == 300 && i == 150 {
				for w := range 5000 { // more terms than the table's bound
					e.Description += " w" + string(rune('a'+w%26)) + string(rune('a'+w/26%26)) + string(rune('a'+w/676))
				}
			}
			it := indexItem{gid: int64(100 + i), orgID: 1, ctxID: 2, event: &e}
			batch = append(batch, it)
			terms := eventTerms(nil, 1, 2, &e, it.leafHash)
			slices.Sort(terms)
			for _, term := range slices.Compact(terms) {
				want = append(want, entry{term, it.gid})
			}
		}
		slices.SortFunc(want, func(a, b entry) int { return cmp.Or(cmp.Compare(a.term, b.term), cmp.Compare(b.gid, a.gid)) })
		seg, pages, bl := b.segment(batch)
		if got := decodeAll(t, pages); !slices.Equal(got, want) {
			t.Fatalf("batch of %d: %d entries, want %d", n, len(got), len(want))
		}
		distinct, leaves := 0, 0
		for i, e := range want {
			if e.term < 0 { // a leaf hash's, in no filter
				leaves++
				continue
			}
			if i == 0 || e.term != want[i-1].term {
				distinct++
			}
			if !bl.has(e.term) {
				t.Fatalf("batch of %d: the Bloom filter lacks term %d", n, e.term)
			}
		}
		if seg.terms != int64(distinct) || leaves != n {
			t.Fatalf("batch of %d: %d terms counted, %d distinct; %d leaf-hash terms", n, seg.terms, distinct, leaves)
		}
		if seg.lo != 100 || seg.hi != int64(99+n) || seg.events != int64(n) || seg.tmin != 1e15 || seg.tmax != 1e15+int64(n-1)*1e6 {
			t.Fatalf("batch of %d: segment %+v", n, seg)
		}
	}
}

// TestFindRun: the run of a term is found in a page without decoding the
// others, and a term between runs or past the last is absent.
func TestFindRun(t *testing.T) {
	w := newPageWriter()
	terms := []int64{-9, 3, 1 << 40, 1<<62 + 5}
	for i, term := range terms {
		for g := int64(10 * (i + 1)); g > 0; g -= 3 {
			w.add(term, 1000+g)
		}
	}
	pages, _ := w.finish()
	if len(pages) != 1 {
		t.Fatalf("%d pages", len(pages))
	}
	rs, _, err := appendRuns(nil, nil, pages[0].data)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		got, ok, err := findRun(pages[0].data, r.term)
		if err != nil || !ok || !slices.Equal(got.gids, r.gids) || got.last != r.last {
			t.Errorf("term %d: %v %v %v, want %v", r.term, got, ok, err, r)
		}
	}
	for _, absent := range []int64{-10, 0, 4, 1<<62 + 6} {
		if _, ok, err := findRun(pages[0].data, absent); ok || err != nil {
			t.Errorf("term %d: found %v, %v", absent, ok, err)
		}
	}
	if _, _, err := findRun(pages[0].data[:len(pages[0].data)-1], terms[3]); err == nil {
		t.Error("a truncated page decoded")
	}
}

func TestSegmentDirectory(t *testing.T) {
	keys := []pageKey{{math.MinInt64, -5}, {-1, -9}, {-1, -2}, {7, math.MinInt64 + 1}}
	got, err := decodeDir(encodeDir(keys))
	if err != nil || !slices.Equal(got, keys) {
		t.Fatalf("%v, %v", got, err)
	}
	for _, bad := range [][]byte{encodeDir(keys)[:17], encodeDir([]pageKey{{2, 0}, {1, 0}})} {
		if _, err := decodeDir(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// TestPageCacheBound: the least recently used pages go first, and the
// cache never holds more than its bound.
func TestPageCacheBound(t *testing.T) {
	p := newSegPages()
	p.max = 3000
	for i := range 3 {
		p.put(pageRef{1, i}, make([]byte, 1000))
	}
	p.get(pageRef{1, 0})
	p.put(pageRef{2, 0}, make([]byte, 1000))
	for r, want := range map[pageRef]bool{{1, 0}: true, {1, 1}: false, {1, 2}: true, {2, 0}: true} {
		if _, ok := p.get(r); ok != want {
			t.Errorf("page %v cached: %v, want %v", r, ok, want)
		}
	}
	if p.bytes > p.max {
		t.Errorf("%d bytes cached, bound %d", p.bytes, p.max)
	}
}

// FuzzPages: a page read back from a damaged index file decodes to an
// error, never a panic, and findRun agrees with a full decode.
func FuzzPages(f *testing.F) {
	w := newPageWriter()
	for i, term := range []int64{-7, 2, 1 << 50} {
		for g := int64(40); g > 0; g -= int64(i + 1) {
			w.add(term, g)
		}
	}
	pages, _ := w.finish()
	for _, p := range pages {
		f.Add(p.data, int64(2))
	}
	f.Add([]byte{0x80}, int64(0))
	f.Add([]byte{1, 3, 5}, int64(1))
	f.Fuzz(func(t *testing.T, data []byte, term int64) {
		rs, _, err := appendRuns(nil, nil, data)
		got, ok, ferr := findRun(data, term)
		if err != nil || !slices.IsSortedFunc(rs, func(a, b run) int { return cmp.Compare(a.term, b.term) }) {
			return // findRun may stop before the damage, or skip a term out of order
		}
		if ferr != nil {
			t.Fatalf("findRun: %v on a page that decodes", ferr)
		}
		var want run
		found := false
		for _, r := range rs {
			if r.term == term && !found {
				want, found = r, true
			}
		}
		if ok != found || ok && (!slices.Equal(got.gids, want.gids) || got.last != want.last) {
			t.Fatalf("findRun(%d) = %v %v, full decode %v %v", term, got, ok, want, found)
		}
	})
}

// TestBloom: no false negatives, about 1 % false positives at 10 bits a
// term, and the encoding round-trips.
func TestBloom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 20000
	b := newBloom(n)
	in := map[int64]bool{}
	for range n {
		v := int64(r.Uint64())
		in[v] = true
		b.add(v)
	}
	for v := range in {
		if !b.has(v) {
			t.Fatalf("term %d added, not found", v)
		}
	}
	fp := 0
	for range 100000 {
		if v := int64(r.Uint64()); !in[v] && b.has(v) {
			fp++
		}
	}
	if fp > 2000 {
		t.Errorf("%d false positives in 100,000", fp)
	}
	got, err := decodeBloom(b.encode())
	if err != nil || !slices.Equal(got, b) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := decodeBloom([]byte{1, 2, 3}); err == nil {
		t.Error("a 3-byte filter decoded")
	}
	t.Logf("%d false positives in 100,000", fp)
}

// findRun returns the run of term in a page, decoded whole through seekRun
// and runReader: what a cursor decodes piecemeal, for the tests.
func findRun(data []byte, term int64) (run, bool, error) {
	r, found, err := seekRun(data, term)
	if !found || err != nil {
		return run{}, false, err
	}
	gids := make([]int64, 0, r.left)
	for {
		g, ok, err := r.next()
		if err != nil {
			return run{}, false, err
		}
		if !ok {
			return run{term: term, gids: gids, last: len(r.data) == 0}, true, nil
		}
		gids = append(gids, g)
	}
}

// next returns the run's next gid; false at its end.
func (r *runReader) next() (int64, bool, error) {
	if r.left == 0 {
		return 0, false, nil
	}
	if _, err := r.seek(math.MaxInt64); err != nil {
		return 0, false, err
	}
	return r.g, true, nil
}

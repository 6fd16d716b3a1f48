package sqlite

import (
	"cmp"
	"container/list"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
)

// Segments are immutable, so what a search reads of one can be kept in
// memory without ever going stale: each live segment's directory (the key
// of every page, 16 bytes a page: ~6 MB for the ~375,000 pages of 10 M
// events), a Bloom filter of its terms but the leaf hashes (10 bits a
// term; the leaf hashes, one per event, would add ~12 MB at 10 M events)
// and a bounded cache of pages. A probe is then a binary search and, on a cache hit, no
// SQL at all. Before, every probe was a query whose B-tree pages SQLite
// reads again after any write (a reader's page cache is emptied whenever
// another connection has written, and every search writes its read
// record): a quarter of a trail's time at 10 M events.
//
// Segment ids are never reused (AUTOINCREMENT), so an id names the same
// pages for the life of the index. A directory is published after the
// transaction that made its segment live has committed; a search whose
// snapshot holds a segment without a published directory (just written,
// or just merged away) probes it with SQL instead.

// A pageKey is a page's key: its last entry's term and minus its gid.
type pageKey struct{ term, ngid int64 }

func (a pageKey) compare(b pageKey) int {
	return cmp.Or(cmp.Compare(a.term, b.term), cmp.Compare(a.ngid, b.ngid))
}

// encodeDir is a segment's directory as stored (segments.dir).
func encodeDir(keys []pageKey) []byte {
	b := make([]byte, 0, 16*len(keys))
	for _, k := range keys {
		b = binary.BigEndian.AppendUint64(b, uint64(k.term))
		b = binary.BigEndian.AppendUint64(b, uint64(k.ngid))
	}
	return b
}

func decodeDir(b []byte) ([]pageKey, error) {
	if len(b)%16 != 0 {
		return nil, errors.New("malformed segment directory")
	}
	keys := make([]pageKey, len(b)/16)
	for i := range keys {
		keys[i] = pageKey{int64(binary.BigEndian.Uint64(b[16*i:])), int64(binary.BigEndian.Uint64(b[16*i+8:]))}
	}
	if !slices.IsSortedFunc(keys, pageKey.compare) {
		return nil, errors.New("segment directory out of order")
	}
	return keys, nil
}

// pageKeys are the keys of pages.
func pageKeys(pages []page) []pageKey {
	keys := make([]pageKey, len(pages))
	for i, p := range pages {
		keys[i] = pageKey{p.term, p.ngid}
	}
	return keys
}

// pageCacheBytes bounds the pages kept in memory.
const pageCacheBytes = 64 << 20

// A segDir is what searches keep of a live segment.
type segDir struct {
	keys  []pageKey
	terms bloom
}

// A bloom is a Bloom filter of a segment's terms: 10 bits and 7 probes a
// term, about 1 % false positives. A probe of a segment that lacks the term
// (a trail's target in most segments) then costs no page read.
type bloom []uint64

func newBloom(terms int64) bloom { return make(bloom, max(1, (terms*10+63)/64)) }

func bloomHashes(t int64) (uint64, uint64) {
	x := uint64(t)
	return x * 0x9e3779b97f4a7c15, (x^x>>31)*0xbf58476d1ce4e5b9 | 1
}

func (b bloom) add(t int64) {
	h1, h2 := bloomHashes(t)
	m := uint64(len(b)) * 64
	for i := range uint64(7) {
		bit := (h1 + i*h2) % m
		b[bit/64] |= 1 << (bit % 64)
	}
}

func (b bloom) has(t int64) bool {
	h1, h2 := bloomHashes(t)
	m := uint64(len(b)) * 64
	for i := range uint64(7) {
		bit := (h1 + i*h2) % m
		if b[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (b bloom) encode() []byte {
	out := make([]byte, 0, 8*len(b))
	for _, w := range b {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out
}

func decodeBloom(data []byte) (bloom, error) {
	if len(data) == 0 || len(data)%8 != 0 {
		return nil, errors.New("malformed Bloom filter")
	}
	b := make(bloom, len(data)/8)
	for i := range b {
		b[i] = binary.LittleEndian.Uint64(data[8*i:])
	}
	return b, nil
}

// segPages holds the directories of the live segments and the pages read
// most recently; safe for concurrent use.
type segPages struct {
	mu    sync.Mutex
	dirs  map[int64]segDir
	lru   list.List // of *cachedPage, most recent first
	pages map[pageRef]*list.Element
	bytes int
	max   int // bytes of pages kept
}

type pageRef struct {
	seg int64
	i   int
}

type cachedPage struct {
	ref  pageRef
	data []byte
}

func newSegPages() *segPages {
	return &segPages{dirs: map[int64]segDir{}, pages: map[pageRef]*list.Element{}, max: pageCacheBytes}
}

func (p *segPages) setDir(seg int64, d segDir) {
	p.mu.Lock()
	p.dirs[seg] = d
	p.mu.Unlock()
}

// drop forgets merged-away segments' directories (their cached pages age
// out).
func (p *segPages) drop(segs []int64) {
	p.mu.Lock()
	for _, s := range segs {
		delete(p.dirs, s)
	}
	p.mu.Unlock()
}

func (p *segPages) dir(seg int64) (segDir, bool) {
	if p == nil {
		return segDir{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.dirs[seg]
	return d, ok
}

func (p *segPages) get(r pageRef) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.pages[r]
	if !ok {
		return nil, false
	}
	p.lru.MoveToFront(e)
	return e.Value.(*cachedPage).data, true
}

func (p *segPages) put(r pageRef, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pages[r]; ok {
		return
	}
	p.pages[r] = p.lru.PushFront(&cachedPage{ref: r, data: data})
	p.bytes += len(data)
	for p.bytes > p.max {
		e := p.lru.Back()
		c := e.Value.(*cachedPage)
		p.lru.Remove(e)
		delete(p.pages, c.ref)
		p.bytes -= len(c.data)
	}
}

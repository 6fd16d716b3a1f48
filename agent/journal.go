package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record is one accepted write waiting to be forwarded.
type Record struct {
	// ID is the delivery's Idempotency-Key: every attempt to forward the
	// record carries it, so the server commits the event once.
	ID string `json:"id"`
	// Kind is KindControlPlane or KindReplicated.
	Kind string `json:"kind"`
	// Path and Query are the route on the server ("/audit/org/o/auditctx/c").
	Path  string `json:"path"`
	Query string `json:"query,omitempty"`
	// Body is the request body exactly as the workload sent it.
	Body []byte `json:"body"`
	// Received is when the agent accepted the write; it becomes the
	// event's time when the body has none.
	Received time.Time `json:"received"`

	seq  uint64
	file string
}

// Record kinds.
const (
	KindControlPlane = "controlplane"
	KindReplicated   = "replicated"
)

// journal keeps records durably in a directory, one file per record named
// by a sequence number: a record is written to a temporary file, fsynced,
// renamed into place and the directory fsynced before Append returns, and
// removed (with the directory fsynced again) once the server has it.
// Recovery lists the directory: what is there was accepted and not yet
// confirmed delivered.
type journal struct {
	dir string

	mu      sync.Mutex
	next    uint64
	pending []*Record // in sequence order
	wake    chan struct{}
}

const (
	recordSuffix = ".rec"
	rejectedDir  = "rejected"
)

func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(filepath.Join(dir, rejectedDir), 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &journal{dir: dir, next: 1, wake: make(chan struct{}, 1)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A write that did not finish was never acknowledged.
			os.Remove(filepath.Join(dir, name))
			continue
		}
		num, ok := strings.CutSuffix(name, recordSuffix)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		r := new(Record)
		if err := json.Unmarshal(data, r); err != nil {
			return nil, fmt.Errorf("journal: record %s is damaged: %w", name, err)
		}
		r.seq, r.file = seq, name
		j.pending = append(j.pending, r)
		j.next = max(j.next, seq+1)
	}
	slices.SortFunc(j.pending, func(a, b *Record) int { return int(a.seq - b.seq) })
	return j, nil
}

// Append stores r durably and queues it for forwarding.
func (j *journal) Append(r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	j.mu.Lock()
	r.seq = j.next
	j.next++
	j.mu.Unlock()
	r.file = fmt.Sprintf("%020d%s", r.seq, recordSuffix)
	final := filepath.Join(j.dir, r.file)
	if err := writeFileSync(final+".tmp", data); err != nil {
		return err
	}
	if err := os.Rename(final+".tmp", final); err != nil {
		return err
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.mu.Lock()
	// Appends of concurrent requests may finish out of order: keep the
	// queue in sequence order.
	i, _ := slices.BinarySearchFunc(j.pending, r.seq, func(p *Record, s uint64) int {
		switch {
		case p.seq < s:
			return -1
		case p.seq > s:
			return 1
		}
		return 0
	})
	j.pending = slices.Insert(j.pending, i, r)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// Pending returns the pending records in sequence order (a copy of the
// list; the records are shared and must not be modified).
func (j *journal) Pending() []*Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.pending)
}

// Len returns the number of pending records.
func (j *journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// Done removes a delivered record.
func (j *journal) Done(r *Record) error {
	if err := os.Remove(filepath.Join(j.dir, r.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.drop(r)
	return nil
}

// Reject moves a record the server refused for good into rejected/, where
// an operator can inspect it; it is not retried.
func (j *journal) Reject(r *Record) error {
	if err := os.Rename(filepath.Join(j.dir, r.file), filepath.Join(j.dir, rejectedDir, r.file)); err != nil {
		return err
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.drop(r)
	return nil
}

func (j *journal) drop(r *Record) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if i := slices.Index(j.pending, r); i >= 0 {
		j.pending = slices.Delete(j.pending, i, i+1)
	}
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

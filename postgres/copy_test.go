package postgres

import (
	"bytes"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyOIDs are the types of eventColumns, in order.
var copyOIDs = []uint32{pgtype.Int8OID, pgtype.Int8OID, pgtype.Int8OID, pgtype.Int8OID, pgtype.UUIDOID,
	pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.TSVectorOID, pgtype.ByteaOID, pgtype.ByteaOID}

// BenchmarkCopyRows measures the per-row work of Append's COPY without a
// database: copySource deriving the search columns and words of 1,000
// realistic events, and pgx's binary encoding of every value, as
// pgx.Conn.CopyFrom does it.
func BenchmarkCopyRows(b *testing.B) {
	const n = 1000
	if len(copyOIDs) != len(eventColumns) {
		b.Fatal("copyOIDs does not match eventColumns")
	}
	rows := make([]placed, n)
	for i := range rows {
		en := storetest.NewEntry("bench", "app", storetest.RealisticEvent(i))
		rows[i] = placed{ref: ctxRef{id: 7, orgID: 3}, event: en.Event, seq: int64(i), gid: int64(i),
			leaf: en.Leaf.Bytes(int64(i)), hashes: make([]byte, 64)}
	}
	s := &Store{cfg: Config{Now: time.Now}}
	m := pgtype.NewMap()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		src := &copySource{s: s, rows: rows}
		buf = buf[:0]
		for src.Next() {
			vals, err := src.Values()
			if err != nil {
				b.Fatal(err)
			}
			buf = encodeRow(b, m, buf, vals)
		}
		if src.Err() != nil {
			b.Fatal(src.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// encodeRow appends a row's values as COPY's binary format encodes them.
func encodeRow(tb testing.TB, m *pgtype.Map, buf []byte, vals []any) []byte {
	for i, v := range vals {
		sp := len(buf)
		buf = append(buf, 0xff, 0xff, 0xff, 0xff) // NULL unless encoded
		enc, err := m.Encode(copyOIDs[i], pgtype.BinaryFormatCode, v, buf)
		if err != nil {
			tb.Fatalf("column %s: %v", eventColumns[i], err)
		}
		if enc != nil {
			buf = enc
			l := len(buf) - sp - 4
			buf[sp], buf[sp+1], buf[sp+2], buf[sp+3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		}
	}
	return buf
}

// TestCopyRow checks the bytes COPY sends for a row against the row built
// from plain values (nil for NULL), as the engine built it before it
// pointed the row at its values.
func TestCopyRow(t *testing.T) {
	full := storetest.RealisticEvent(1)
	full.Title = "Ünïcode TITLE"
	full.Changes = append(full.Changes, cairn.Change{Field: "n", Old: 1.5, New: map[string]any{"k": "V"}})
	events := []cairn.Event{full, {Action: "a", Outcome: cairn.OutcomeSuccess},
		{Action: "a", Outcome: cairn.OutcomeSuccess, Actor: &cairn.Actor{Name: "x"}, Target: &cairn.Target{ID: "t"}, Group: &cairn.Group{}}}
	s := &Store{cfg: Config{Now: time.Now}}
	m := pgtype.NewMap()
	for i, ev := range events {
		en := storetest.NewEntry("acme", "app", ev)
		e := en.Event
		p := placed{ref: ctxRef{id: 7, orgID: 3}, event: e, seq: 300, gid: 1 << 40, leaf: en.Leaf.Bytes(300), hashes: make([]byte, 64)}
		src := &copySource{s: s, rows: []placed{p}}
		if !src.Next() {
			t.Fatal(src.Err())
		}
		row, _ := src.Values()
		got := encodeRow(t, m, nil, row)

		str := func(s string) any {
			if s == "" {
				return nil
			}
			return s
		}
		var actorType, actorID, actorEmail, targetType, targetID, groupID any
		if a := e.Actor; a != nil {
			actorType, actorID, actorEmail = str(a.Type), str(a.ID), str(a.Email)
		}
		if tg := e.Target; tg != nil {
			targetType, targetID = str(tg.Type), str(tg.ID)
		}
		if g := e.Group; g != nil {
			groupID = str(g.ID)
		}
		w := words(e)
		id := uuid.MustParse(e.ID)
		want := encodeRow(t, m, nil, []any{int64(3), int64(7), int64(300), int64(1 << 40), [16]byte(id),
			e.ReceivedTime.UTC(), e.EventTime.UTC(), e.Action, e.Kind, e.Outcome,
			actorType, actorID, actorEmail, targetType, targetID, groupID, w, p.leaf, p.hashes})
		if !bytes.Equal(got, want) {
			t.Errorf("event %d: COPY row\n got %x\nwant %x", i, got, want)
		}
	}
}

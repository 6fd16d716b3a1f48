package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/gowebpki/jcs"
)

var testSeqs = []int64{0, 1, 255, 9007199254740991}

// jcsOf is the independent oracle: encoding/json (which follows the
// omitempty tags of cairn.Event) canonicalised by gowebpki/jcs.
func jcsOf(t *testing.T, e *cairn.Event, seq int64) []byte {
	t.Helper()
	c := *e
	c.Seq = seq
	c.EventTime, c.ReceivedTime = c.EventTime.UTC(), c.ReceivedTime.UTC()
	j, err := json.Marshal(&c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	want, err := jcs.Transform(j)
	if err != nil {
		t.Fatalf("jcs.Transform(%s): %v", j, err)
	}
	return want
}

func TestCanonicalMatchesJCS(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	g := newGen(1, false)
	for i := range n {
		e := g.event()
		leaf, err := Canonical(e)
		if err != nil {
			t.Fatalf("event %d: Canonical: %v", i, err)
		}
		for _, seq := range testSeqs {
			got, want := leaf.Bytes(seq), jcsOf(t, e, seq)
			if !bytes.Equal(got, want) {
				t.Fatalf("event %d, seq %d: leaf differs from JCS\n got %s\nwant %s", i, seq, got, want)
			}
		}
	}
}

// TestJCSVectors runs the RFC 8785 reference vectors through the decoder
// and the encoder of free-form values.
func TestJCSVectors(t *testing.T) {
	inputs, err := filepath.Glob("testdata/jcs/input/*.json")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata/jcs/output", filepath.Base(in)))
			if err != nil {
				t.Fatal(err)
			}
			v, err := decodeValue(src)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			enc := &encoder{buf: []byte{}}
			if err := enc.value(v); err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc.buf, want) {
				t.Errorf("got  %s\nwant %s", enc.buf, want)
			}
		})
	}
}

// decodeValue decodes one free-form JSON value as DecodeEvent would.
func decodeValue(data []byte) (any, error) {
	d := new(decoder)
	d.src = *bytes.NewBuffer(data)
	d.dec.Reset(&d.src)
	d.text = string(data)
	return d.value()
}

func TestCanonicalNumbers(t *testing.T) {
	// Expected strings are ECMAScript's Number.prototype.toString, from the
	// RFC 8785 number test file samples and RFC 8785 Appendix B.
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1, "-1"},
		{0.1, "0.1"},
		{100, "100"},
		{1e20, "100000000000000000000"},
		{1e21, "1e+21"},
		{-1e21, "-1e+21"},
		{1e-6, "0.000001"},
		{1e-7, "1e-7"},
		{1.5e-7, "1.5e-7"},
		{9.999999999999997e-7, "9.999999999999997e-7"},
		{5e-324, "5e-324"},
		{-5e-324, "-5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{9007199254740991, "9007199254740991"},
		{9007199254740994, "9007199254740994"},
		{9007199254740996, "9007199254740996"},
		{333333333.33333329, "333333333.3333333"},
		{1e30, "1e+30"},
		{4.5, "4.5"},
		{2e-3, "0.002"},
		{1e-27, "1e-27"},
		{295147905179352830000, "295147905179352830000"},
		{1e23, "1e+23"},
		{1.0 / 3, "0.3333333333333333"},
	}
	for _, tt := range tests {
		enc := &encoder{}
		if err := enc.float(tt.in); err != nil {
			t.Errorf("float(%v): %v", tt.in, err)
			continue
		}
		if got := string(enc.buf); got != tt.want {
			t.Errorf("float(%v) = %s, want %s", tt.in, got, tt.want)
		}
		if want, _ := jcs.NumberToJSON(tt.in); string(enc.buf) != want {
			t.Errorf("float(%v) = %s, jcs.NumberToJSON = %s", tt.in, enc.buf, want)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	// In order of UTF-16 code units.
	ordered := []string{"", "\x00", "1", "10", "A", "a", "aa", "ab", "b", "\u0080", "\u00f6", "\u20ac",
		"\U0001F600", "\U0001F602", "\U0010FFFF", "\uE000", "\uFB33", "\uFFFF"}
	for i, a := range ordered {
		for j, b := range ordered {
			got := compareUTF16(a, b)
			switch {
			case i < j && got >= 0, i > j && got <= 0, i == j && got != 0:
				t.Errorf("compareUTF16(%+q, %+q) = %d, want sign of %d", a, b, got, i-j)
			}
		}
	}
}

func TestCanonicalShape(t *testing.T) {
	received := time.Date(2026, 3, 1, 12, 0, 0, 120000000, time.FixedZone("CET", 3600))
	e := &cairn.Event{
		ID: "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d", Org: "acme", Context: "docs",
		EventTime: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC), ReceivedTime: received,
		Action: "doc.read", Kind: cairn.KindRead, Outcome: cairn.OutcomeSuccess,
		Target:   &cairn.Target{ID: "7", Data: map[string]any{"seq": 5.0, `"seq":`: "x"}},
		Metadata: map[string]any{"seq": []any{"seq"}},
		Version:  "1",
	}
	leaf, err := Canonical(e)
	if err != nil {
		t.Fatal(err)
	}
	wantHead := `{"action":"doc.read","context":"docs","event_time":"2026-03-01T11:00:00Z",` +
		`"id":"0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d","kind":"read","metadata":{"seq":["seq"]},` +
		`"org":"acme","outcome":"success","received_time":"2026-03-01T11:00:00.12Z"`
	wantTail := `,"target":{"data":{"\"seq\":":"x","seq":5},"id":"7"},"version":"1"}`
	if string(leaf.Head) != wantHead {
		t.Errorf("Head:\n got %s\nwant %s", leaf.Head, wantHead)
	}
	if string(leaf.Tail) != wantTail {
		t.Errorf("Tail:\n got %s\nwant %s", leaf.Tail, wantTail)
	}
	// Appending to Head must not overwrite Tail.
	_ = append(leaf.Head, "XXXXXXXX"...)
	if string(leaf.Tail) != wantTail {
		t.Errorf("appending to Head changed Tail: %s", leaf.Tail)
	}
	for _, seq := range testSeqs {
		if got, want := leaf.Bytes(seq), jcsOf(t, e, seq); !bytes.Equal(got, want) {
			t.Errorf("seq %d:\n got %s\nwant %s", seq, got, want)
		}
	}
}

func TestCanonicalSize(t *testing.T) {
	base := func() *cairn.Event {
		return &cairn.Event{ID: "id", Org: "o", Context: "c", Action: "a", Kind: "other", Outcome: "success",
			EventTime: time.Unix(0, 0).UTC(), ReceivedTime: time.Unix(0, 0).UTC()}
	}
	small, err := Canonical(base())
	if err != nil {
		t.Fatal(err)
	}
	// Fill the description so that MaxLen lands exactly on the limit, then
	// one byte over it. The member adds `,"description":""`.
	fill := cairn.MaxLeafSize - small.MaxLen() - len(`,"description":""`)
	for _, tt := range []struct {
		n    int
		code string
	}{{fill, ""}, {fill + 1, cairn.ETooLarge}} {
		e := base()
		e.Description = strings.Repeat("d", tt.n)
		leaf, err := Canonical(e)
		if got := cairn.ErrorCode(err); got != tt.code {
			t.Fatalf("description of %d bytes: code %q, want %q (err %v)", tt.n, got, tt.code, err)
		}
		if err == nil {
			if leaf.MaxLen() != cairn.MaxLeafSize || len(leaf.Bytes(9007199254740991)) != cairn.MaxLeafSize {
				t.Errorf("MaxLen = %d, longest leaf %d, want %d", leaf.MaxLen(), len(leaf.Bytes(9007199254740991)), cairn.MaxLeafSize)
			}
		}
	}
}

func TestCanonicalErrors(t *testing.T) {
	deep := any("x")
	for range MaxDepth + 1 {
		deep = map[string]any{"a": deep}
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	tests := []struct {
		name string
		edit func(e *cairn.Event)
		code string
	}{
		{"invalid UTF-8 in action", func(e *cairn.Event) { e.Action = "a\xffb" }, cairn.EInvalid},
		{"invalid UTF-8 in key", func(e *cairn.Event) { e.Metadata = map[string]any{"\xc3": 1.0} }, cairn.EInvalid},
		{"surrogate in UTF-8", func(e *cairn.Event) { e.Metadata = map[string]any{"k": "\xed\xa0\x80"} }, cairn.EInvalid},
		{"NaN", func(e *cairn.Event) { e.Metadata = map[string]any{"k": math.NaN()} }, cairn.EInvalid},
		{"infinity", func(e *cairn.Event) { e.Changes = []cairn.Change{{Field: "f", New: math.Inf(-1)}} }, cairn.EInvalid},
		{"big int", func(e *cairn.Event) { e.Metadata = map[string]any{"k": int64(1 << 53)} }, cairn.EInvalid},
		{"big uint", func(e *cairn.Event) { e.Metadata = map[string]any{"k": uint64(math.MaxUint64)} }, cairn.EInvalid},
		{"unsupported type", func(e *cairn.Event) { e.Metadata = map[string]any{"k": struct{}{}} }, cairn.EInternal},
		{"year 10000", func(e *cairn.Event) { e.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, cairn.EInvalid},
		{"negative year in UTC", func(e *cairn.Event) {
			e.ReceivedTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))
		}, cairn.EInvalid},
		{"too deep", func(e *cairn.Event) { e.Metadata = map[string]any{"d": deep} }, cairn.EInvalid},
		{"cycle", func(e *cairn.Event) { e.Metadata = cyclic }, cairn.EInvalid},
		{"too large", func(e *cairn.Event) { e.Metadata = map[string]any{"k": strings.Repeat("x", cairn.MaxLeafSize)} }, cairn.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &cairn.Event{ID: "id", Org: "o", Context: "c", Action: "a", Kind: "other", Outcome: "success",
				EventTime: time.Unix(0, 0).UTC(), ReceivedTime: time.Unix(0, 0).UTC()}
			tt.edit(e)
			_, err := Canonical(e)
			if got := cairn.ErrorCode(err); got != tt.code {
				t.Errorf("code %q, want %q (err %v)", got, tt.code, err)
			}
		})
	}
}

func TestCanonicalGoValues(t *testing.T) {
	// Values a Go caller may put in free-form data encode as their JSON
	// equivalents do.
	e := &cairn.Event{ID: "id", Org: "o", Context: "c", Action: "a", Kind: "other", Outcome: "success",
		EventTime: time.Unix(0, 0).UTC(), ReceivedTime: time.Unix(0, 0).UTC(),
		Metadata: map[string]any{
			"int": -3, "int8": int8(-8), "int16": int16(16), "int32": int32(32), "int64": int64(1<<53 - 1),
			"uint": uint(1), "uint8": uint8(8), "uint16": uint16(16), "uint32": uint32(32), "uint64": uint64(64),
			"strings": []string{"a", "<b>"}, "map": map[string]string{"z": "1", "\uE000": "2", "\U0001F600": "3"},
		}}
	leaf, err := Canonical(e)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leaf.Bytes(3), jcsOf(t, e, 3); !bytes.Equal(got, want) {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	if !bytes.Contains(leaf.Tail, []byte(`"<b>"`)) && !bytes.Contains(leaf.Head, []byte(`"<b>"`)) {
		t.Errorf("HTML characters were escaped: %s", leaf.Bytes(3))
	}
}

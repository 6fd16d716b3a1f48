package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkFastAgrees fails if decodeFast accepts data that decodeStrict
// rejects, or decodes it differently. It reports whether decodeFast
// accepted data.
func checkFastAgrees(t *testing.T, data []byte) bool {
	t.Helper()
	fast, ok := decodeFast(data)
	if !ok {
		return false
	}
	strict, err := decodeStrict(data)
	if err != nil {
		t.Fatalf("decodeFast accepts what decodeStrict rejects (%v): %q", err, data)
	}
	// reflect.DeepEqual first: cmp takes exponential time on deep arrays.
	if !reflect.DeepEqual(strict, fast) {
		t.Fatalf("decodeFast differs from decodeStrict (-strict +fast):\n%s\n%q", cmp.Diff(strict, fast), data)
	}
	return true
}

// fastSeeds are inputs at the edges of what decodeStrict accepts.
var fastSeeds = []string{
	`{"action":"a"}`,
	" \t\r\n{ \"action\" : \"a\" }\n ",
	`{"act\u0069on":"a","\u0061ction":"b"}`,
	`{"action":"a","event_time":null,"kind":null,"actor":null,"target":null,"group":null,"changes":null,"source":null,"fields":null,"metadata":null}`,
	`{"action":"a","changes":[],"fields":{},"metadata":{},"actor":{},"target":{"data":{}}}`,
	`{"action":"a","changes":[null]}`, `{"action":"a","changes":[{}]}`, `{"action":"a","changes":{}}`,
	`{"action":"a","event_time":"2026-03-01T10:00:00.123456789-23:59"}`,
	`{"action":"a","event_time":"2026-03-01T10:00:00.Z"}`, `{"action":"a","event_time":"2026-02-30T10:00:00Z"}`,
	`{"action":"a","event_time":"2026-03-01T10:00:00\u002b01:00"}`, `{"action":"a","event_time":1}`,
	`{"action":"a","metadata":{"n":9007199254740992,"m":-9007199254740992,"o":9007199254740993,"p":1e400,"q":1e-400}}`,
	`{"action":"a","metadata":{"n":[0,-0,1.5,-1.5e+3,2E-2,01,1.,.5,-,1e,+1,0x10,NaN,Infinity]}}`,
	`{"action":"a","metadata":{"t":true,"f":false,"n":null,"x":tru,"y":nul,"z":falsey}}`,
	`{"action":"\ud83d\ude00","metadata":{"\ud800":1,"k":"\udc00","r":"\ude00\ud83d","u":"\uD83D\uDE00"}}`,
	`{"action":"\u0000\b\f\n\r\t\/\\\"","metadata":{"\u":1,"\u12":2,"\x":3,"\ud83d\u0041":4}}`,
	"{\"action\":\"a\xff\",\"\xc0\xaf\":\"\xed\xa0\x80\",\"k\xc3\":1}", "{\"action\":\"a\x01\"}", "{\"action\":\"a\x7f\u0085\"}",
	`{"action":"a","action":"b"}`, `{"action":"a","actor":{"id":"1","id":"2"}}`,
	`{"action":"a","metadata":{"k":1,"k":2}}`, `{"action":"a","fields":{"k":"1","\u006b":"2"}}`,
	`{"action":"a","changes":[{"field":"f","new":[{"x":{"y":1,"y":1}}]}]}`,
	`{"action":"a","changes":[{"field":"f","field":"g"}]}`,
	`{"action":"a","id":"x"}`, `{"action":"a","seq":1}`, `{"action":"a","foo":1}`, `{"action":"a","Action":"b"}`,
	`{"action":1}`, `{"action":["a"]}`, `{"action":"a","actor":"bob"}`, `{"action":"a","fields":{"k":1}}`,
	`{"action":"a","metadata":[]}`, `{"action":"a","actor":{"claims":"x"}}`,
	`{"action":"a","metadata":` + strings.Repeat(`{"a":`, MaxDepth-1) + `1` + strings.Repeat(`}`, MaxDepth-1) + `}`,
	`{"action":"a","metadata":` + strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth) + `}`,
	`{"action":"a","metadata":{"a":` + strings.Repeat(`[`, MaxDepth-2) + strings.Repeat(`]`, MaxDepth-2) + `}}`,
	`{"action":"a","metadata":{"a":` + strings.Repeat(`[`, MaxDepth-1) + strings.Repeat(`]`, MaxDepth-1) + `}}`,
	`{"action":"a"} x`, `{"action":"a"}{"action":"b"}`, `{"action":"a"}]`, `{"action":"a",}`, `{"action":"a"`,
	`[{"action":"a"}]`, `null`, `"action"`, ``, " ", "\ufeff{\"action\":\"a\"}", `{action:"a"}`, `{"action":'a'}`,
	`{"action":"a","metadata":{"a":[1,]}}`, `{"action":"a","metadata":{"a":[,1]}}`, `{"action":"a","metadata":{"a" 1}}`,
}

// TestFastDecoderAgrees checks decodeFast against decodeStrict on edge
// cases, on every truncation of them and on random events, and that it
// does not give up on ordinary events (which would make it pointless).
func TestFastDecoderAgrees(t *testing.T) {
	for _, s := range fastSeeds {
		for n := range len(s) + 1 {
			checkFastAgrees(t, []byte(s[:n]))
		}
	}
	if !checkFastAgrees(t, benchEvent) {
		t.Errorf("decodeFast gives up on benchEvent")
	}
	g := newGen(5, true)
	for i := range 2000 {
		data, err := json.Marshal(g.input())
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			var b bytes.Buffer
			if err := json.Indent(&b, data, "\t", "  "); err != nil {
				t.Fatal(err)
			}
			data = b.Bytes()
		}
		if _, err := decodeStrict(data); err != nil {
			continue // too deep or too large for the generator's luck
		}
		if !checkFastAgrees(t, data) {
			t.Fatalf("event %d: decodeFast gives up on a valid event: %q", i, data)
		}
		// Every byte replaced by one that often breaks something.
		if i%50 == 0 {
			for j := range data {
				for _, c := range []byte{'"', '\\', '}', ']', ',', 'u', 0xff, '0'} {
					m := bytes.Clone(data)
					m[j] = c
					checkFastAgrees(t, m)
				}
			}
		}
	}
}

// FuzzFastDecoder checks that decodeFast accepts only what decodeStrict
// accepts and decodes it alike.
func FuzzFastDecoder(f *testing.F) {
	addEventSeeds(f)
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastAgrees(t, data)
	})
}

func TestPlainPrefix(t *testing.T) {
	for c := range 256 {
		for pos := range 20 {
			for _, n := range []int{pos + 1, pos + 3, pos + 9, 24} {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				want := n
				if !plain[c] {
					want = pos
				}
				if got := plainPrefix(b); got != want {
					t.Fatalf("plainPrefix(%q) = %d, want %d", b, got, want)
				}
				if got := plainPrefix(string(b)); got != want {
					t.Fatalf("plainPrefix(string %q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}

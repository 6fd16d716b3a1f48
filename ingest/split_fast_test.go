package ingest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// checkSplitAgrees fails if splitArrayFast accepts a body that
// splitArrayStrict rejects, or splits it differently. It reports whether
// splitArrayFast accepted the body.
func checkSplitAgrees(t *testing.T, body []byte) bool {
	t.Helper()
	fast, ok := splitArrayFast(body)
	if !ok {
		return false
	}
	strict, _, err := splitArrayStrict(body)
	if err != nil {
		t.Fatalf("splitArrayFast accepts what splitArrayStrict rejects (%v): %q", err, body)
	}
	if !reflect.DeepEqual(fast, strict) {
		t.Fatalf("splitArrayFast splits %q into %q, splitArrayStrict into %q", body, fast, strict)
	}
	for i := range fast {
		if cap(fast[i]) != len(fast[i]) || cap(strict[i]) != len(strict[i]) {
			t.Fatalf("item %d has spare capacity", i)
		}
	}
	return true
}

var splitSeeds = []string{
	`[{"action":"a"}]`, ` [ {"a":1} , {"b":[1,2,{"c":null}]} ] `, `[1,"x",null,true,false,[],{},-0.5e+3,0,1E9]`,
	`[]`, `[ ]`, `[,]`, `[1,]`, `[,1]`, `[1 2]`, `[{"a" 1}]`, `[{"a":1,}]`, `[{1:2}]`, `[{"a":1}`, `[{"a":1}]x`, `[{"a":1}] ]`,
	`[01]`, `[1.]`, `[.5]`, `[-]`, `[1e]`, `[+1]`, `[tru]`, `[nul]`, `[falsey]`, `[NaN]`,
	"[\"\xff\xfe\",{\"\xc0\":\"\xed\xa0\x80\"}]", "[\"a\x01\"]", "[\"a\x7f\"]",
	`["\ud800","\udc00\ud800","\u00e9","\/\b\f\n\r\t\"\\"]`, `["\x"]`, `["\u12"]`, `["\u12g4"]`, `["\`,
	`[{"a":1,"a":2}]`, `[{"s":"]"},{"s":"\"]"}]`,
	`[` + strings.Repeat(`[`, maxSplitDepth) + strings.Repeat(`]`, maxSplitDepth) + `]`,
	`[` + strings.Repeat(`{"a":`, maxSplitDepth-1) + `1` + strings.Repeat(`}`, maxSplitDepth-1) + `]`,
}

// TestSplitFastAgrees checks splitArrayFast against splitArrayStrict on
// edge cases, their truncations and mutations of a realistic batch, and
// that it splits ordinary batches itself.
func TestSplitFastAgrees(t *testing.T) {
	for _, s := range splitSeeds {
		for n := range len(s) + 1 {
			checkSplitAgrees(t, []byte(s[:n]))
		}
	}
	body := append([]byte("[\n"), bytes.Repeat(append(benchEvent, ",\n"...), 20)...)
	body = append(body[:len(body)-2], "\n]"...)
	if !checkSplitAgrees(t, body) {
		t.Fatal("splitArrayFast gives up on a batch of benchEvent")
	}
	for j := range body[:2*len(benchEvent)] {
		for _, c := range []byte{'"', '\\', '}', ']', ',', '[', 'u', 0x01, 0xff, '0', ' '} {
			m := bytes.Clone(body)
			m[j] = c
			checkSplitAgrees(t, m)
		}
	}
	max := append([]byte("["), bytes.Repeat([]byte("1,"), MaxBatch)...)
	max[len(max)-1] = ']'
	if !checkSplitAgrees(t, max) {
		t.Errorf("splitArrayFast gives up on %d items", MaxBatch)
	}
	over := append(max[:len(max)-1:len(max)-1], ",1]"...)
	if checkSplitAgrees(t, over) {
		t.Errorf("splitArrayFast accepts %d items", MaxBatch+1)
	}
}

// FuzzSplitFast checks that splitArrayFast accepts only what
// splitArrayStrict accepts and splits it alike.
func FuzzSplitFast(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSplitAgrees(t, body)
	})
}

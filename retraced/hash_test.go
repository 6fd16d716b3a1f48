package retraced

import (
	"testing"

	"github.com/cairn-audit/cairn"
)

// TestHashVectors reproduces Retraced's published hash vectors (reference
// §6.2): retraced:src/test/models/event/canonicalize.ts, retraced-go
// event_test.go, retraced-js test.ts.
func TestHashVectors(t *testing.T) {
	cases := []struct {
		name       string
		id         string
		event      *Event // built directly where upstream's vector is not a valid event
		raw        string // or parsed from JSON
		wantTarget string
		wantHash   string
	}{
		{
			name: "1 minimal", id: "kfbr392",
			event:      &Event{Action: "largeTazoTea.purchase"},
			wantTarget: "kfbr392:largeTazoTea.purchase:::::0:0::",
			wantHash:   "a60b49fcbbe8569139b97997eaf8fc0b871d2bb88757ef94eae0056fd9326302",
		},
		{
			name: "2 group id only", id: "kfbr392",
			event:      &Event{Action: "largeTazoTea.purchase", hash: hashInput{groupID: "gold-street-id"}},
			wantTarget: "kfbr392:largeTazoTea.purchase:::gold-street-id::0:0::",
			wantHash:   "f17fe3079e5fe34668629f0254a0cabe7ad37ec51d97f034ec8b732e158247d6",
		},
		{
			name: "3 retraced-go", id: "f59b236a449d43a5b27c8322aadc0503",
			raw: `{"action":"channel.list","crud":"r","target":{"id":"6da2ecf53d388e107df6e4dbb061b165"},
				"actor":{"id":"060dbbd5da8c43b57b26179a3bfb7b1a"},"group":{"id":"602f21a3fbd3f92302133762808b39af"},
				"source_ip":"172.19.0.1"}`,
			wantTarget: "f59b236a449d43a5b27c8322aadc0503:channel.list:6da2ecf53d388e107df6e4dbb061b165:060dbbd5da8c43b57b26179a3bfb7b1a:602f21a3fbd3f92302133762808b39af:172.19.0.1:0:0::",
			wantHash:   "2224989b8d83d4b23920f0136f8e3b11ce034d9e0b610ee97c1c198350838a9e",
		},
		{
			name: "4 escaping and key order", id: "abf053dc4a3042459818833276eec717",
			raw: `{"action":"even.more.of.a.test","crud":"u","target":{"id":"some_object01234"},"actor":{"id":"user@domain.xyz"},
				"group":{"id":"%% :: some %% customer :: %%"},"is_failure":true,
				"fields":{";zyx=cba;abc=xyz":"nothing special",";Zyx=Cba%Abc=Xyz":"% hi there %"}}`,
			wantTarget: "abf053dc4a3042459818833276eec717:even.more.of.a.test:some_object01234:user@domain.xyz:%25%25 %3A%3A some %25%25 customer %3A%3A %25%25::1:0:%3BZyx%3DCba%25Abc%3DXyz=%25 hi there %25;%3Bzyx%3Dcba%3Babc%3Dxyz=nothing special;",
			wantHash:   "5b570bff4628b35262fb401d2f6c9bb38d29e212f6e0e8ea93445b4e5a253d50",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.event
			if e == nil {
				var err error
				if e, err = ParseEvent([]byte(tc.raw)); err != nil {
					t.Fatal(err)
				}
			}
			if got := e.HashTarget(tc.id); got != tc.wantTarget {
				t.Errorf("hash target\n got %s\nwant %s", got, tc.wantTarget)
			}
			if got := e.Hash(tc.id); got != tc.wantHash {
				t.Errorf("hash %s, want %s", got, tc.wantHash)
			}
		})
	}
}

// TestHashJSRules covers the segments no published vector exercises, with
// the JS server's rules (reference §6.1, §6.3).
func TestHashJSRules(t *testing.T) {
	base := `"action":"a","crud":"c","actor":{"id":"x"}`
	cases := []struct{ raw, want string }{
		{`{` + base + `}`, "id:a::x:::0:0::"},
		{`{` + base + `,"fields":{}}`, "id:a::x:::0:0:"},     // empty fields: nothing appended
		{`{` + base + `,"metadata":{}}`, "id:a::x:::0:0:::"}, // empty metadata: ":" appended
		{`{` + base + `,"metadata":{"b":"2","a":"1"}}`, "id:a::x:::0:0:::a=1;b=2;"},
		{`{` + base + `,"external_id":"e:1"}`, "id:a::x:::0:0:::e%3A1"},
		{`{` + base + `,"external_id":""}`, "id:a::x:::0:0::"}, // falsy external_id
		{`{` + base + `,"external_id":"e","metadata":{"k":"v"}}`, "id:a::x:::0:0:::e:k=v;"},
		{`{` + base + `,"target":{"id":"t"},"is_anonymous":true}`, "id:a:t:x:::0:1::"},
		{`{` + base + `,"fields":{"\uffff":"1","\ud83d\ude00":"2"}}`, "id:a::x:::0:0:\U0001F600=2;\uffff=1;"}, // UTF-16 order
	}
	for _, tc := range cases {
		e, err := ParseEvent([]byte(tc.raw))
		if err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if got := e.HashTarget("id"); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.raw, got, tc.want)
		}
	}
}

func TestParseEventRules(t *testing.T) {
	ok := []string{
		`{"action":"a","crud":"c","actor":{"id":"x"}}`,
		`{"action":"a","crud":"r","is_anonymous":true}`,
		// retraced-go's minimal event: crud "", group.name "", zero created.
		`{"action":"user.login","group":{"id":"g1","name":""},"created":"0001-01-01T00:00:00Z","crud":"","actor":{"id":"a1"}}`,
		`{"action":"a","crud":"d","actor":{"id":"x"},"source_ip":"::1","created":"2017-01-02T03:04:05.678Z"}`,
	}
	for _, raw := range ok {
		if _, err := ParseEvent([]byte(raw)); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	bad := []string{
		`{"crud":"c","actor":{"id":"x"}}`,                              // no action
		`{"action":"a","actor":{"id":"x"}}`,                            // no crud
		`{"action":"a","crud":"x","actor":{"id":"x"}}`,                 // bad crud
		`{"action":"a","crud":"c"}`,                                    // no actor, not anonymous
		`{"action":"a","crud":"c","actor":{"name":"n"}}`,               // actor without id
		`{"action":"a","crud":"c","actor":{"id":"x"},"group":{}}`,      // empty group... has no id
		`{"action":"a","crud":"c","actor":{"id":"x"},"source_ip":"x"}`, // bad ip
		`{"action":"a","crud":"c","actor":{"id":"x"},"created":"soon"}`,
		`{"action":"a","crud":"c","actor":{"id":"x"},"team_id":"t"}`, // unknown member
		`{"action":"a","crud":"c","actor":{"id":"x","colour":"red"}}`,
		`{"action":"a","crud":"c","actor":{"id":"x"},"fields":{"k":1}}`,
		`[]`, `{`,
	}
	for _, raw := range bad {
		_, err := ParseEvent([]byte(raw))
		if cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", raw, err)
		}
	}
}

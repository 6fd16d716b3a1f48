package nats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/nats"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// server returns the NATS server of CAIRN_TEST_NATS; the test is skipped
// without it, and fails when CAIRN_TEST_REQUIRE names nats.
func server(t *testing.T) string {
	t.Helper()
	url := os.Getenv("CAIRN_TEST_NATS")
	if url == "" {
		if strings.Contains(os.Getenv("CAIRN_TEST_REQUIRE"), "nats") {
			t.Fatal("CAIRN_TEST_REQUIRE names nats but CAIRN_TEST_NATS is not set")
		}
		t.Skip("CAIRN_TEST_NATS is not set")
	}
	return url
}

// stream creates a stream of its own for one test over subjects
// "<prefix>.>" and deletes it afterwards.
func stream(t *testing.T, url string) (jetstream.JetStream, jetstream.Stream, string) {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	name, prefix := "CAIRN_TEST_"+strings.ToUpper(id), "cairntest"+id
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	return js, s, prefix
}

// Events published through the dispatcher are read back from the stream:
// every event once, per context in seq order, on the templated subject.
func TestJetStream(t *testing.T) {
	url := server(t)
	_, s, prefix := stream(t, url)
	h := forwardtest.New(t, []forward.SinkType{nats.Type}, nil)
	h.Append("app", 40, func(i int, e *cairn.Event) { e.Action = []string{"user.login", "doc.update"}[i%2] })
	h.Create(forwardtest.Forwarder("nats", "nats", map[string]any{"url": url, "subject": prefix + ".{context}.{action}",
		"stream": s.CachedInfo().Config.Name}, "app", "billing"))
	h.Append("billing", 15, nil)
	h.CaughtUp("nats")
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 55 {
		t.Fatalf("stream holds %d messages, want 55", info.State.Msgs)
	}
	var got []forwardtest.Delivered
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			ID, Context, Action string
			Seq                 int64
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if want := prefix + "." + e.Context + "." + e.Action; m.Subject != want {
			t.Fatalf("subject %s, want %s", m.Subject, want)
		}
		if m.Header.Get(jetstream.MsgIDHeader) != e.ID {
			t.Fatalf("Nats-Msg-Id %q, want the event id %s", m.Header.Get(jetstream.MsgIDHeader), e.ID)
		}
		got = append(got, forwardtest.Delivered{Context: e.Context, Seq: e.Seq, ID: e.ID})
	}
	if dups := forwardtest.CheckStream(t, got, map[string]int64{"app": 40, "billing": 15}); dups != 0 {
		t.Fatalf("%d duplicates in the stream", dups)
	}
}

// A batch sent twice is stored once (Nats-Msg-Id de-duplication), and a
// subject no stream stores is an invalid-configuration error.
func TestDuplicatesAndMissingStream(t *testing.T) {
	url := server(t)
	_, s, prefix := stream(t, url)
	env := forward.Env{Guard: forwardtest.Loopback, Timeout: 10 * time.Second}
	sink, err := nats.New(map[string]any{"url": url, "subject": prefix + ".{context}"}, env)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for range 2 {
		if ans, err := sink.Send(ctx, forwardtest.Batch(t, cairn.FormatCEF)); err != nil || ans.Acked != 2 {
			t.Fatalf("send = %+v, %v", ans, err)
		}
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream after sending a batch twice: %+v, %v; want 2 messages", info, err)
	}
	orphan, _ := nats.New(map[string]any{"url": url, "subject": "nostream" + prefix + ".{context}"}, env)
	defer orphan.Close()
	if _, err := orphan.Send(ctx, forwardtest.Batch(t, cairn.FormatJSON)); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("publish to a subject no stream stores: %v, want invalid", err)
	}
	guarded, _ := nats.New(map[string]any{"url": strings.Replace(url, "127.0.0.1", "localhost", 1), "subject": prefix + ".x"},
		forward.Env{Guard: &forward.Guard{}})
	defer guarded.Close()
	if _, err := guarded.Send(ctx, forwardtest.Batch(t, cairn.FormatJSON)); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Fatalf("connect to a loopback server without an allow-list: %v, want forbidden", err)
	}
}

func TestSubjects(t *testing.T) {
	e := &cairn.Event{Org: "acme", Context: "app.v2", Action: "user.login failed..x", Kind: "login",
		Target: &cairn.Target{Type: "doc*"}}
	for _, c := range []struct{ tmpl, want string }{
		{"", "audit.app_v2.user.login_failed._.x"},
		{"audit.{org}.{target_type}.{group}", "audit.acme.doc_._"},
		{"x.{kind}.{outcome}", "x.login._"},
	} {
		tm, err := nats.ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		if got := tm.Subject(e); got != c.want {
			t.Errorf("%q: subject %q, want %q", c.tmpl, got, c.want)
		}
	}
	for _, bad := range []string{"a..b", "a.*", "a.>", "a.{nope}", "a.{context", "a b", "a.{context}x", ".a", "a."} {
		if _, err := nats.ParseTemplate(bad); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("ParseTemplate(%q) = %v, want invalid", bad, err)
		}
	}
}

// validSubject reports whether s is a NATS publish subject: non-empty
// dot-separated tokens of printable ASCII, no wildcards.
func validSubject(s string) bool {
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c > '~' || c == '*' || c == '>' {
				return false
			}
		}
	}
	return s != ""
}

func FuzzSubjectTemplate(f *testing.F) {
	for _, s := range []string{"", "audit.{context}.{action}", "a.{org}.{group}", "a..b", "{action}", "x.{target_type}.y.*"} {
		f.Add(s, "user.login", "app")
	}
	f.Fuzz(func(t *testing.T, tmpl, action, context string) {
		tm, err := nats.ParseTemplate(tmpl)
		if err != nil {
			if cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("ParseTemplate(%q): code %q", tmpl, cairn.ErrorCode(err))
			}
			return
		}
		e := &cairn.Event{Org: "o", Context: context, Action: action, Group: &cairn.Group{ID: context}}
		if s := tm.Subject(e); !validSubject(s) {
			t.Fatalf("template %q with action %q, context %q gives invalid subject %q", tmpl, action, context, s)
		}
	})
}

func TestSettings(t *testing.T) {
	env := forward.Env{Guard: &forward.Guard{}}
	for name, s := range map[string]map[string]any{
		"no url":      {},
		"scheme":      {"url": "http://n:4222"},
		"credentials": {"url": "nats://u:p@n:4222"},
		"private":     {"url": "nats://10.0.0.1:4222"},
		"template":    {"url": "nats://n:4222", "subject": "a.*"},
		"both auths":  {"url": "nats://n:4222", "token": "t", "username": "u"},
	} {
		if _, err := nats.New(s, env); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

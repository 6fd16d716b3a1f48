package kafka_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

const topic = "audit"

func cluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// consume reads every record of the topic back.
func consume(t *testing.T, c *kfake.Cluster, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume: %v (have %d of %d)", err, len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// Events go through kfake and are consumed back: every event once, keyed
// by context/target, in order within each partition, and per context in
// seq order within each key.
func TestProduceAndConsumeBack(t *testing.T) {
	c := cluster(t)
	h := forwardtest.New(t, []forward.SinkType{kafka.Type}, nil)
	h.Append("app", 60, nil)
	h.Append("billing", 20, func(i int, e *cairn.Event) { e.Target = nil })
	h.Create(forwardtest.Forwarder("kafka", "kafka", map[string]any{"brokers": c.ListenAddrs(), "topic": topic}))
	h.CaughtUp("kafka")
	recs := consume(t, c, 80)
	if len(recs) != 80 {
		t.Fatalf("consumed %d records, want 80", len(recs))
	}
	seen := map[string]bool{}
	lastSeq := map[string]int64{} // per key
	for _, r := range recs {
		var e struct {
			ID      string `json:"id"`
			Context string `json:"context"`
			Seq     int64  `json:"seq"`
			Target  *struct {
				Type, ID string
			} `json:"target"`
		}
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		wantKey := e.Context
		if e.Target != nil {
			wantKey = e.Context + "/" + e.Target.Type + "/" + e.Target.ID
		}
		if string(r.Key) != wantKey {
			t.Fatalf("record key %q, want %q", r.Key, wantKey)
		}
		if header(r, "cairn-id") != e.ID || header(r, "cairn-seq") != strconv.FormatInt(e.Seq, 10) || header(r, "cairn-context") != e.Context {
			t.Fatalf("headers %v do not match the event", r.Headers)
		}
		k := e.Context + "/" + e.ID
		if seen[k] {
			t.Fatalf("event %s consumed twice", k)
		}
		seen[k] = true
		if prev, ok := lastSeq[string(r.Key)]; ok && e.Seq <= prev {
			t.Fatalf("key %s: seq %d after %d: per-object order broken", r.Key, e.Seq, prev)
		}
		lastSeq[string(r.Key)] = e.Seq
	}
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestSASLPlain(t *testing.T) {
	c := cluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "cairn", "s3cret"))
	env := forward.Env{Guard: forwardtest.Loopback, Timeout: 10 * time.Second}
	good, err := kafka.New(map[string]any{"brokers": c.ListenAddrs(), "topic": topic, "sasl_mechanism": "PLAIN",
		"sasl_username": "cairn", "sasl_password": "s3cret"}, env)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if ans, err := good.Send(ctx, forwardtest.Batch(t, cairn.FormatOCSF)); err != nil || ans.Acked != 2 {
		t.Fatalf("send with SASL/PLAIN = %+v, %v", ans, err)
	}
	recs := consume(t, c, 2, kgo.SASL(plain.Auth{User: "cairn", Pass: "s3cret"}.AsMechanism()))
	keys := map[string]bool{}
	for _, r := range recs {
		keys[string(r.Key)] = true
	}
	if len(recs) != 2 || !keys["app/document/d-1"] || !keys["app"] {
		t.Fatalf("consumed %d records with keys %v", len(recs), keys)
	}
	bad, _ := kafka.New(map[string]any{"brokers": c.ListenAddrs(), "topic": topic, "sasl_mechanism": "PLAIN",
		"sasl_username": "cairn", "sasl_password": "wrong"}, env)
	defer bad.Close()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel2()
	if _, err := bad.Send(ctx2, forwardtest.Batch(t, cairn.FormatJSON)); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}

// The brokers are dialled through the SSRF guard.
func TestGuard(t *testing.T) {
	c := cluster(t)
	sink, err := kafka.New(map[string]any{"brokers": []string{"localhost:" + port(c)}, "topic": topic},
		forward.Env{Guard: &forward.Guard{}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := sink.Send(ctx, forwardtest.Batch(t, cairn.FormatJSON)); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Fatalf("produce to a loopback broker without an allow-list: %v, want forbidden", err)
	}
}

func port(c *kfake.Cluster) string {
	a := c.ListenAddrs()[0]
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == ':' {
			return a[i+1:]
		}
	}
	return a
}

func TestSettings(t *testing.T) {
	env := forward.Env{Guard: &forward.Guard{}}
	for name, s := range map[string]map[string]any{
		"no brokers":  {"topic": "t"},
		"no topic":    {"brokers": []string{"k:9092"}},
		"bad broker":  {"brokers": []string{"k"}, "topic": "t"},
		"private":     {"brokers": []string{"10.0.0.1:9092"}, "topic": "t"},
		"mechanism":   {"brokers": []string{"k:9092"}, "topic": "t", "sasl_mechanism": "GSSAPI"},
		"no username": {"brokers": []string{"k:9092"}, "topic": "t", "sasl_mechanism": "PLAIN"},
	} {
		if _, err := kafka.New(s, env); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

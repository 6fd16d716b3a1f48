package elastic_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/elastic"
	"github.com/cairn-audit/cairn/forward/forwardtest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func env() forward.Env { return forward.Env{Guard: forwardtest.Loopback, Timeout: 5 * time.Second} }

func TestRequestGolden(t *testing.T) {
	rc := &forwardtest.Recorder{Answer: func(forwardtest.Request) (int, string) {
		return 200, `{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}`
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	sink, err := elastic.New(map[string]any{"url": srv.URL + "/", "index": "logs-cairn-default", "api_key": "aWQ6a2V5"}, env())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ans, err := sink.Send(t.Context(), forwardtest.Batch(t, cairn.FormatECS))
	if err != nil || ans.Acked != 2 {
		t.Fatalf("send = %+v, %v", ans, err)
	}
	forwardtest.Golden(t, "bulk.ecs", *update, rc.Last(), "Authorization", "Content-Type", "User-Agent")
}

// A bulk answer acknowledges its leading created (or already existing)
// items; the first refused item fails the rest with its code.
func TestItemOutcomes(t *testing.T) {
	for _, c := range []struct {
		statuses []int
		acked    int
		code     string
	}{
		{[]int{201, 201}, 2, ""},
		{[]int{201, 409}, 2, ""},
		{[]int{201, 429}, 1, cairn.EUnavailable},
		{[]int{400, 201}, 0, cairn.EInvalid},
		{[]int{201}, 0, cairn.EUnavailable}, // an answer that does not match the request
	} {
		rc := &forwardtest.Recorder{Answer: func(forwardtest.Request) (int, string) { return 200, bulkAnswer(c.statuses) }}
		srv := httptest.NewServer(rc)
		sink, _ := elastic.New(map[string]any{"url": srv.URL, "index": "audit", "username": "u", "password": "p"}, env())
		ans, err := sink.Send(t.Context(), forwardtest.Batch(t, cairn.FormatECS))
		if ans.Acked != c.acked || cairn.ErrorCode(err) != c.code {
			t.Errorf("statuses %v: acked %d err %v, want %d %q", c.statuses, ans.Acked, err, c.acked, c.code)
		}
		if !strings.HasPrefix(rc.Last().Header.Get("Authorization"), "Basic ") {
			t.Error("no basic auth header")
		}
		srv.Close()
	}
}

func bulkAnswer(statuses []int) string {
	var items []string
	errs := false
	for _, s := range statuses {
		if s >= 300 && s != 409 {
			errs = true
			items = append(items, fmt.Sprintf(`{"create":{"status":%d,"error":{"type":"mapper_parsing_exception","reason":"failed to parse"}}}`, s))
		} else {
			items = append(items, fmt.Sprintf(`{"create":{"status":%d}}`, s))
		}
	}
	return fmt.Sprintf(`{"errors":%v,"items":[%s]}`, errs, strings.Join(items, ","))
}

// cluster is a fake _bulk endpoint that stores documents by _id and
// refuses some items with 429 the first time it sees them.
type cluster struct {
	mu    sync.Mutex
	docs  map[string]bool
	order []forwardtest.Delivered
	calls int
}

func (c *cluster) answer(r forwardtest.Request) (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	var statuses []int
	for sc.Scan() {
		var action struct {
			Create struct {
				ID string `json:"_id"`
			} `json:"create"`
		}
		json.Unmarshal(sc.Bytes(), &action)
		sc.Scan()
		var doc struct {
			Event struct {
				ID       string `json:"id"`
				Sequence int64  `json:"sequence"`
			} `json:"event"`
			Cairn struct {
				Context string `json:"context"`
			} `json:"cairn"`
		}
		json.Unmarshal(sc.Bytes(), &doc)
		switch {
		case c.docs[action.Create.ID]:
			statuses = append(statuses, 409)
		case c.calls%4 == 0 && len(statuses) == 3:
			statuses = append(statuses, 429)
		default:
			c.docs[action.Create.ID] = true
			c.order = append(c.order, forwardtest.Delivered{Context: doc.Cairn.Context, Seq: doc.Event.Sequence, ID: doc.Event.ID})
			statuses = append(statuses, 201)
		}
	}
	return 200, bulkAnswer(statuses)
}

// Through the dispatcher: items refused mid-batch are sent again from
// the first refused one; every event is stored exactly once. (Elasticsearch
// handles bulk items independently, so the items after a refused one are
// already stored when it is sent again: the index order is not the log
// order, which documents do not need, having @timestamp and sequence.)
func TestDelivery(t *testing.T) {
	c := &cluster{docs: map[string]bool{}}
	rc := &forwardtest.Recorder{Answer: c.answer}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(t, []forward.SinkType{elastic.Type}, nil)
	h.Append("app", 57, nil)
	h.Create(forwardtest.Forwarder("es", "elastic", map[string]any{"url": srv.URL, "index": "audit"}, "app"))
	h.CaughtUp("es")
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[int64]int{}
	for _, d := range c.order {
		seen[d.Seq]++
	}
	for seq := range int64(57) {
		if seen[seq] != 1 {
			t.Fatalf("seq %d stored %d times, want once", seq, seen[seq])
		}
	}
	if len(c.order) != 57 {
		t.Fatalf("%d documents stored, want 57", len(c.order))
	}
}

func TestSettings(t *testing.T) {
	for name, s := range map[string]map[string]any{
		"no index":    {"url": "https://es:9200"},
		"bad index":   {"url": "https://es:9200", "index": "Audit/x"},
		"both auths":  {"url": "https://es:9200", "index": "a", "api_key": "k", "username": "u"},
		"credentials": {"url": "https://u:p@es:9200", "index": "a"},
	} {
		if _, err := elastic.New(s, env()); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

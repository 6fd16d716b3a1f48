package webhook_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/webhook"
)

// The Standard Webhooks specification's own test vector.
func TestSignatureVector(t *testing.T) {
	key, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	for _, bad := range []string{"whsec_!!", "whsec_c2hvcnQ="} {
		if _, err := webhook.ParseSecret(bad); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("ParseSecret(%q) = %v, want invalid", bad, err)
		}
	}
}

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a webhook endpoint that answers the first requests with a
// scripted list of failures, then succeeds, recording what it accepted.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	script []string // "500", "429", "302", "timeout", "reset", "401"
	got    []forwardtest.Delivered
	bad    string // first header problem seen
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	step := ""
	if len(rc.script) > 0 {
		step, rc.script = rc.script[0], rc.script[1:]
	}
	if rc.bad == "" {
		rc.bad = checkHeaders(r, body)
	}
	rc.mu.Unlock()
	switch step {
	case "500", "429", "401":
		code, _ := strconv.Atoi(step)
		if code == 429 {
			w.Header().Set("Retry-After", "0")
		}
		http.Error(w, "scripted failure", code)
		return
	case "302":
		http.Redirect(w, r, "https://elsewhere.example/hook", http.StatusFound)
		return
	case "timeout":
		// Accept the batch but answer after the sender gave up: it
		// must send the batch again (a duplicate the receiver sees).
		time.Sleep(400 * time.Millisecond)
	case "reset":
		c, _, _ := w.(http.Hijacker).Hijack()
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		return
	}
	var events []struct {
		ID      string `json:"id"`
		Context string `json:"context"`
		Seq     int64  `json:"seq"`
	}
	if err := json.Unmarshal(body, &events); err != nil {
		var one struct {
			ID      string `json:"id"`
			Context string `json:"context"`
			Seq     int64  `json:"seq"`
		}
		if err := json.Unmarshal(body, &one); err != nil {
			http.Error(w, "bad body", 400)
			return
		}
		events = append(events, one)
	}
	rc.mu.Lock()
	for _, e := range events {
		rc.got = append(rc.got, forwardtest.Delivered{Context: e.Context, Seq: e.Seq, ID: e.ID})
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func checkHeaders(r *http.Request, body []byte) string {
	key, _ := webhook.ParseSecret(secret)
	ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	switch {
	case r.Method != http.MethodPost:
		return "method " + r.Method
	case r.Header.Get("User-Agent") != "Cairn-Audit-Logger/1.0":
		return "user agent " + r.Header.Get("User-Agent")
	case r.Header.Get("Content-Type") != "application/json":
		return "content type " + r.Header.Get("Content-Type")
	case r.Header.Get("Authorization") != "Bearer tok-123":
		return "authorization"
	case r.Header.Get("X-Tenant") != "t1":
		return "static header"
	case r.Header.Get("webhook-id") == "":
		return "no webhook-id"
	case r.Header.Get("webhook-signature") != webhook.Sign(key, r.Header.Get("webhook-id"), ts, body):
		return "bad signature"
	}
	return ""
}

func (rc *receiver) delivered() []forwardtest.Delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]forwardtest.Delivered(nil), rc.got...)
}

func settings(url string) map[string]any {
	return map[string]any{"uri": url, "token": "tok-123", "method": "post", "signing_secret": secret,
		"headers": map[string]any{"X-Tenant": "t1"}}
}

// A receiver that fails, times out, resets, redirects and comes back:
// every event arrives, in order per context; only batches whose answer
// was lost arrive twice.
func TestDeliveryThroughFailures(t *testing.T) {
	rc := &receiver{t: t, script: []string{"500", "timeout", "429", "reset", "302", "500", "500", "timeout"}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(t, []forward.SinkType{webhook.Type}, func(c *forward.Config) { c.SinkTimeout = 200 * time.Millisecond })
	h.Append("app", 30, nil)
	h.Create(forwardtest.Forwarder("hook", "webhook", settings(srv.URL), "app", "billing"))
	h.Append("billing", 15, nil)
	h.Append("app", 12, nil)
	h.CaughtUp("hook")
	dups := forwardtest.CheckStream(t, rc.delivered(), map[string]int64{"app": 42, "billing": 15})
	if rc.bad != "" {
		t.Fatalf("a request was wrong: %s", rc.bad)
	}
	if dups > 2*10 {
		t.Fatalf("%d duplicates: more than the two batches whose answer was lost", dups)
	}
	st := h.Status("hook")
	if st.State != cairn.ForwarderRunning || st.LastSuccess.IsZero() || st.LastErrorCode == "" {
		t.Fatalf("status = %+v", st)
	}
}

func TestSingleMode(t *testing.T) {
	rc := &receiver{t: t, script: []string{"500"}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(t, []forward.SinkType{webhook.Type}, nil)
	h.Append("app", 7, nil)
	s := settings(srv.URL)
	s["mode"] = "single"
	h.Create(forwardtest.Forwarder("hook", "webhook", s, "app"))
	h.CaughtUp("hook")
	if dups := forwardtest.CheckStream(t, rc.delivered(), map[string]int64{"app": 7}); dups != 0 {
		t.Fatalf("%d duplicates in single mode with no lost answers", dups)
	}
	if rc.bad != "" {
		t.Fatalf("a request was wrong: %s", rc.bad)
	}
}

// Each kind of failure is reported with its code by the test endpoint.
func TestAnswersAsCodes(t *testing.T) {
	for _, c := range []struct {
		step, code string
	}{
		{"", ""}, {"302", cairn.EInvalid}, {"401", cairn.EForbidden}, {"500", cairn.EUnavailable},
		{"429", cairn.EUnavailable}, {"reset", cairn.EUnavailable},
	} {
		t.Run("answer "+c.step, func(t *testing.T) {
			rc := &receiver{t: t, script: []string{c.step}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			h := forwardtest.New(t, []forward.SinkType{webhook.Type}, nil)
			h.Create(forwardtest.Forwarder("hook", "webhook", settings(srv.URL), "app"))
			res, err := h.Service.Test(t.Context(), forwardtest.Org, "hook")
			if err != nil {
				t.Fatal(err)
			}
			if res.ErrorCode != c.code || res.OK != (c.code == "") {
				t.Fatalf("test result %+v, want code %q", res, c.code)
			}
			if c.code == "" && res.Answer != "HTTP 204" {
				t.Fatalf("answer %q, want HTTP 204", res.Answer)
			}
		})
	}
}

// Without an allow-list the SSRF guard refuses a loopback receiver, both
// when the forwarder is saved (an IP literal) and when a name resolves to
// loopback at dial time.
func TestSSRFGuard(t *testing.T) {
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(t, []forward.SinkType{webhook.Type}, func(c *forward.Config) { c.Guard = &forward.Guard{} })
	_, err := h.Service.Create(t.Context(), forwardtest.Forwarder("hook", "webhook", settings(srv.URL), "app"))
	if cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("create with a loopback IP: %v, want invalid", err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	h.Create(forwardtest.Forwarder("hook", "webhook", settings("http://localhost:"+port+"/"), "app"))
	res, err := h.Service.Test(t.Context(), forwardtest.Org, "hook")
	if err != nil || res.ErrorCode != cairn.EForbidden {
		t.Fatalf("test through the guard: %+v, %v; want forbidden", res, err)
	}
	if len(rc.delivered()) != 0 {
		t.Fatal("the guard let a request through")
	}
}

func TestSettings(t *testing.T) {
	env := forward.Env{Guard: forwardtest.Loopback, Timeout: time.Second}
	for name, s := range map[string]map[string]any{
		"no uri":          {},
		"ftp":             {"uri": "ftp://x/"},
		"credentials":     {"uri": "https://u:p@x/"},
		"method":          {"uri": "https://x/", "method": "GET"},
		"mode":            {"uri": "https://x/", "mode": "stream"},
		"bad secret":      {"uri": "https://x/", "signing_secret": "nope!"},
		"unknown":         {"uri": "https://x/", "bearer": "x"},
		"reserved header": {"uri": "https://x/", "headers": map[string]any{"user-agent": "x"}},
	} {
		if _, err := webhook.New(s, env); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

// A credential in the URL's query never reaches an error message (which
// is stored in the status and logged).
func TestErrorsHideTheURLQuery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h := forwardtest.New(t, []forward.SinkType{webhook.Type}, nil)
	h.Create(forwardtest.Forwarder("hook", "webhook", map[string]any{"uri": "http://" + addr + "/hook?api_key=query-secret-42"}, "app"))
	res, err := h.Service.Test(t.Context(), forwardtest.Org, "hook")
	if err != nil || res.OK || res.ErrorCode != cairn.EUnavailable {
		t.Fatalf("test against a closed port = %+v, %v; want unavailable", res, err)
	}
	if strings.Contains(res.Error, "query-secret-42") {
		t.Fatalf("the error shows the URL's query: %s", res.Error)
	}
}

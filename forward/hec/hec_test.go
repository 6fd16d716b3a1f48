package hec_test

import (
	"flag"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/hec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestRequestGolden(t *testing.T) {
	for _, format := range []string{cairn.FormatJSON, cairn.FormatOCSF} {
		t.Run(format, func(t *testing.T) {
			rc := &forwardtest.Recorder{Answer: func(forwardtest.Request) (int, string) { return 200, `{"text":"Success","code":0}` }}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			sink, err := hec.New(map[string]any{"url": srv.URL, "token": "hec-token", "index": "audit", "host": "cairn-1"},
				forward.Env{Guard: forwardtest.Loopback, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			ans, err := sink.Send(t.Context(), forwardtest.Batch(t, format))
			if err != nil || ans.Acked != 2 || ans.Detail != "HTTP 200 Success" {
				t.Fatalf("send = %+v, %v", ans, err)
			}
			forwardtest.Golden(t, "request."+format, *update, rc.Last(), "Authorization", "Content-Type", "User-Agent")
		})
	}
}

// HEC answers with a code in the body; a non-zero code or a 4xx/5xx is a
// failure with a code.
func TestAnswers(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		code   string
	}{
		{200, `{"text":"Success","code":0}`, ""},
		{403, `{"text":"Invalid token","code":4}`, cairn.EForbidden},
		{400, `{"text":"No data","code":5}`, cairn.EInvalid},
		{503, `{"text":"Server is busy","code":9}`, cairn.EUnavailable},
		{200, `{"text":"odd","code":6}`, cairn.EInvalid},
	} {
		rc := &forwardtest.Recorder{Answer: func(forwardtest.Request) (int, string) { return c.status, c.body }}
		srv := httptest.NewServer(rc)
		sink, _ := hec.New(map[string]any{"url": srv.URL + "/custom/path", "token": "t"}, forward.Env{Guard: forwardtest.Loopback, Timeout: 5 * time.Second})
		_, err := sink.Send(t.Context(), forwardtest.Batch(t, cairn.FormatJSON))
		if cairn.ErrorCode(err) != c.code {
			t.Errorf("HTTP %d %s: %v, want code %q", c.status, c.body, err, c.code)
		}
		if p := rc.Last().Path; p != "/custom/path" {
			t.Errorf("a URL with a path was changed to %s", p)
		}
		srv.Close()
	}
}

// Through the dispatcher: a collector that is busy at first gets every
// event, in order.
func TestDelivery(t *testing.T) {
	calls := 0
	rc := &forwardtest.Recorder{Answer: func(forwardtest.Request) (int, string) {
		calls++
		if calls%3 == 1 {
			return 503, `{"text":"Server is busy","code":9}`
		}
		return 200, `{"text":"Success","code":0}`
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(t, []forward.SinkType{hec.Type}, nil)
	h.Append("app", 35, nil)
	h.Create(forwardtest.Forwarder("splunk", "splunk_hec", map[string]any{"url": srv.URL, "token": "t"}, "app"))
	h.CaughtUp("splunk")
	if st := h.Status("splunk"); st.LastErrorCode != cairn.EUnavailable {
		t.Fatalf("status %+v: the busy answers were not recorded", st)
	}
}

func TestSettings(t *testing.T) {
	env := forward.Env{Guard: forwardtest.Loopback}
	for name, s := range map[string]map[string]any{
		"no token": {"url": "https://splunk:8088"},
		"no url":   {"token": "t"},
		"unknown":  {"url": "https://splunk:8088", "token": "t", "channel": "x"},
	} {
		if _, err := hec.New(s, env); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkRetracedSearch measures one Retraced GraphQL search with
// retraced-go's query (page size 3) over a project of 10,000 events:
// a publisher query matching one actor's 100 events (pushed down to the
// store's actor index), and a viewer's default query (crud:c,u,d) over
// its group's 1,000 events, every match read to count and sort them.
func BenchmarkRetracedSearch(b *testing.B) {
	f := newFixture(b, Config{}, 0)
	f.release()
	auth := "Token token=" + f.token
	post := func(path, auth, body string) []byte {
		req, _ := http.NewRequest("POST", f.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			b.Fatalf("POST %s: %v %v", path, resp, err)
		}
		defer resp.Body.Close()
		var out json.RawMessage
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	for batch := range 200 {
		var sb strings.Builder
		sb.WriteString(`{"events":[`)
		for i := range 50 {
			n := batch*50 + i
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"action":"doc.edit","crud":"u","actor":{"id":"actor-%d"},"group":{"id":"g%d"},"target":{"id":"t%d"}}`, n%100, n%10, n)
		}
		sb.WriteString("]}")
		post(rbase+"/event/bulk", auth, sb.String())
	}
	search := func(b *testing.B, path, auth, query string) {
		body := fmt.Sprintf(`{"query":%s,"variables":{"last":3,"query":%q}}`, quote(retracedGoQuery), query)
		for b.Loop() {
			post(path, auth, body)
		}
	}
	b.Run("publisher-actor", func(b *testing.B) { search(b, rbase+"/graphql", auth, "actor.id:actor-7") })
	b.Run("viewer-group", func(b *testing.B) {
		req, _ := http.NewRequest("GET", f.url+rbase+"/viewertoken?group_id=g3&actor_id=v", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var tok struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		var sess struct{ Token string }
		json.Unmarshal(post("/auditlog/viewer/v1/viewersession", "", `{"token":"`+tok.Token+`"}`), &sess)
		search(b, "/auditlog/viewer/v1/graphql?skipViewLogEvent=true", sess.Token, "crud:c,u,d")
	})
}

package format

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
)

// CEF renders an event as one ArcSight CEF line (no trailing newline):
//
//	CEF:0|Cairn|Cairn|1.0|<action>|<name>|<severity>|<extension>
//
// Header fields escape "\" and "|"; extension values escape "\", "=",
// newline (\n) and carriage return (\r). Severity is 3 for a success and
// 7 for a failure or failed login. The extension uses standard keys where
// CEF has them (rt, externalId, act, outcome, cat, suid, suser, src,
// requestClientApplication, msg, reason) and labelled custom strings for
// the rest: cs1 context, cn1 seq, cs2 org, cs3 target, cs4 group,
// cs5 changes (JSON), cs6 request id.
func CEF(e *cairn.Event) string {
	sev := 3
	if e.Outcome == cairn.OutcomeFailure || e.Kind == cairn.KindLoginFailed {
		sev = 7
	}
	var b strings.Builder
	b.WriteString("CEF:0|")
	for _, h := range []string{Vendor, Product, Version, e.Action, firstNonEmpty(e.Title, e.Action)} {
		b.WriteString(CEFHeader(h))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(sev))
	b.WriteByte('|')
	ext := &cefExt{b: &b}
	ext.add("rt", strconv.FormatInt(ms(e), 10))
	ext.add("externalId", e.ID)
	ext.add("act", e.Action)
	ext.add("outcome", e.Outcome)
	ext.add("cat", e.Kind)
	ext.label("cs1", "context", e.Context)
	ext.label("cn1", "seq", strconv.FormatInt(e.Seq, 10))
	ext.label("cs2", "org", e.Org)
	if a := e.Actor; a != nil {
		ext.add("suid", a.ID)
		ext.add("suser", firstNonEmpty(a.Email, a.Name))
	}
	if t := e.Target; t != nil && (t.Type != "" || t.ID != "") {
		ext.label("cs3", "target", t.Type+"/"+t.ID)
	}
	if g := e.Group; g != nil {
		ext.label("cs4", "group", g.ID)
	}
	if len(e.Changes) > 0 {
		if c, err := json.Marshal(e.Changes); err == nil {
			ext.label("cs5", "changes", string(c))
		}
	}
	if s := e.Source; s != nil {
		ext.add("src", s.IP)
		ext.add("requestClientApplication", s.UserAgent)
		ext.label("cs6", "request_id", s.RequestID)
	}
	ext.add("reason", e.Reason)
	ext.add("msg", e.Description)
	return b.String()
}

type cefExt struct {
	b     *strings.Builder
	first bool
}

func (x *cefExt) add(key, val string) {
	if val == "" {
		return
	}
	if x.first {
		x.b.WriteByte(' ')
	}
	x.first = true
	x.b.WriteString(key)
	x.b.WriteByte('=')
	x.b.WriteString(CEFValue(val))
}

func (x *cefExt) label(key, label, val string) {
	if val == "" {
		return
	}
	x.add(key+"Label", label)
	x.add(key, val)
}

// CEFHeader escapes a CEF header field: "\" → "\\", "|" → "\|"; line
// breaks, which a header cannot hold, become spaces.
func CEFHeader(s string) string {
	return cefHeaderEscaper.Replace(s)
}

// CEFValue escapes a CEF extension value: "\" → "\\", "=" → "\=",
// newline → "\n", carriage return → "\r".
func CEFValue(s string) string {
	return cefValueEscaper.Replace(s)
}

var (
	cefHeaderEscaper = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r\n", " ", "\n", " ", "\r", " ")
	cefValueEscaper  = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r", `\r`, "\n", `\n`)
)

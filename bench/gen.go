package main

import (
	"math/rand/v2"
	"strconv"
)

// The synthetic data set.
//
// Every id is a prefix plus a zero-padded number of fixed width, so a
// pre-generated request body can be re-randomised in place before each send
// by overwriting digits (a few nanoseconds per event) instead of encoding
// fresh JSON. That keeps the client's CPU cost negligible next to the
// server's while every request still spreads over the whole actor, target
// and group space.
//
// Invariants the query mode relies on:
//   - actor n (0 ≤ n < actors) has id actorID(n); it is a "serviceaccount" actor
//     when n%serviceEvery == 0, else a "user";
//   - target n (0 ≤ n < targets) has type targetTypes[n%4] and id "obj-<n>";
//   - group n (0 ≤ n < groups) has id "tenant-<n>";
//   - the action fixes the target type (actionDefs[i].ttype).

const serviceEvery = 25

var actionDefs = [...]struct {
	action, kind string
	ttype        int // index into targetTypes
	component    string
	failPercent  int
}{
	{"document.update", "update", 0, "web-editor", 3},
	{"document.read", "read", 0, "web-editor", 1},
	{"user.login", "login", 1, "auth-service", 12},
	{"invoice.create", "create", 2, "billing-api", 4},
	{"policy.delete", "delete", 3, "policy-engine", 6},
}

var targetTypes = [...]string{"document", "account", "invoice", "policy"}
var targetNames = [...]string{"Document ", "Account ", "Invoice ", "Policy "}

// actionPrefixes are the distinct "<prefix>.*" action filters.
var actionPrefixes = [...]string{"document", "user", "invoice", "policy"}

// words make up descriptions; the query mode's free-text searches pick
// from them, so every q= search has matches.
var words = [...]string{
	"quarterly", "budget", "review", "approved", "pending", "contract",
	"renewal", "customer", "vendor", "compliance", "security", "migration",
	"onboarding", "payment", "overdue", "refund", "discount", "enterprise",
	"pilot", "roadmap", "launch", "hotfix", "release", "incident",
	"escalation", "retention", "privacy", "export", "archive", "template",
	"signature", "workflow", "deadline", "forecast", "revenue", "expense",
	"travel", "hiring", "benefits", "training", "exception", "rotation",
	"credential", "mobile", "desktop", "partner", "reseller", "region",
	"europe", "pacific", "atlantic", "northwind", "contoso", "fabrikam",
	"tailspin", "litware", "adventure", "wingtip", "proseware", "fourthcoffee",
	"alpine", "margie", "lucerne", "woodgrove",
}

var userAgents = [...]string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"cairn-sdk-go/1.4.0 (linux; amd64)",
}

var statuses = [...]string{"draft", "review", "approved", "published", "archived"}
var versions = [...]string{"4.2.1", "4.2.2", "4.3.0"}
var failReasons = [...]string{"invalid credentials", "permission denied", "mfa challenge timed out", "rate limited"}

// universe is the id space of one run.
type universe struct {
	actors, targets, groups int
	aw, tw, gw              int // digit widths
}

func newUniverse(actors, targets, groups int) *universe {
	return &universe{actors: actors, targets: targets, groups: groups,
		aw: digits(actors - 1), tw: digits(targets - 1), gw: digits(groups - 1)}
}

func digits(n int) int {
	if n < 10 {
		return 1
	}
	return len(strconv.Itoa(n))
}

func isService(n int) bool { return n%serviceEvery == 0 }

func actorPrefix(service bool) string {
	if service {
		return "svc-"
	}
	return "user-"
}

func (u *universe) actorID(n int) string {
	return string(appendPadded([]byte(actorPrefix(isService(n))), uint64(n), u.aw))
}
func (u *universe) actorEmail(n int) string { return u.actorID(n) + "@example.com" }
func (u *universe) targetID(n int) string {
	return string(appendPadded([]byte("obj-"), uint64(n), u.tw))
}
func (u *universe) groupID(n int) string {
	return string(appendPadded([]byte("tenant-"), uint64(n), u.gw))
}

// randActor picks an actor of the given class. Callers ask for users only
// when at least one user actor exists (the class came from an actual pick).
func (u *universe) randActor(r *rand.Rand, service bool) int {
	if service {
		return serviceEvery * r.IntN((u.actors+serviceEvery-1)/serviceEvery)
	}
	for {
		if n := r.IntN(u.actors); !isService(n) {
			return n
		}
	}
}

// randTarget picks a target of type index t.
func (u *universe) randTarget(r *rand.Rand, t int) int {
	return 4*r.IntN((u.targets-t+3)/4) + t
}

func appendPadded(b []byte, v uint64, width int) []byte {
	n := len(b)
	for range width {
		b = append(b, '0')
	}
	writePadded(b[n:], v)
	return b
}

func writePadded(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// Patchable fields.
const (
	fActor = iota
	fTarget
	fGroup
	fRequest
)

const requestIDWidth = 12

type slot struct {
	off   int32
	width uint8
	field uint8
}

type eventMeta struct {
	slots   [2]int32 // [start, end) in body.slots
	service bool
	ttype   uint8
}

// body is one pre-encoded request body: a single event object, or a JSON
// array of events.
type body struct {
	buf    []byte
	slots  []slot
	events []eventMeta
	single bool
}

func (b *body) count() int { return len(b.events) }

// generator builds bodies.
type generator struct {
	u *universe
	r *rand.Rand
}

func (g *generator) newBody(n int, single bool) *body {
	b := &body{single: single, events: make([]eventMeta, 0, n),
		slots: make([]slot, 0, 12*n), buf: make([]byte, 0, 700*n+2)}
	if !single {
		b.buf = append(b.buf, '[')
	}
	for i := range n {
		if i > 0 {
			b.buf = append(b.buf, ',')
		}
		g.appendEvent(b)
	}
	if !single {
		b.buf = append(b.buf, ']')
	}
	return b
}

func (g *generator) num(b *body, field uint8, width int, v uint64) {
	b.slots = append(b.slots, slot{off: int32(len(b.buf)), width: uint8(width), field: field})
	b.buf = appendPadded(b.buf, v, width)
}

func (g *generator) word() string { return words[g.r.IntN(len(words))] }

func (g *generator) appendEvent(b *body) {
	r, u := g.r, g.u
	ai := r.IntN(len(actionDefs))
	def := actionDefs[ai]
	actor := r.IntN(u.actors)
	service := isService(actor)
	target := u.randTarget(r, def.ttype)
	group := r.IntN(u.groups)
	fail := r.IntN(100) < def.failPercent

	meta := eventMeta{service: service, ttype: uint8(def.ttype)}
	meta.slots[0] = int32(len(b.slots))

	s := b.buf
	s = append(s, `{"action":"`...)
	s = append(s, def.action...)
	s = append(s, `","kind":"`...)
	s = append(s, def.kind...)
	if fail {
		s = append(s, `","outcome":"failure","reason":"`...)
		s = append(s, failReasons[r.IntN(len(failReasons))]...)
	} else {
		s = append(s, `","outcome":"success`...)
	}
	s = append(s, `","actor":{"type":"`...)
	name := "User "
	if service {
		s = append(s, "serviceaccount"...)
		name = "Service "
	} else {
		s = append(s, "user"...)
	}
	s = append(s, `","id":"`...)
	s = append(s, actorPrefix(service)...)
	b.buf = s
	g.num(b, fActor, u.aw, uint64(actor))
	b.buf = append(b.buf, `","name":"`...)
	b.buf = append(b.buf, name...)
	g.num(b, fActor, u.aw, uint64(actor))
	b.buf = append(b.buf, `","email":"`...)
	b.buf = append(b.buf, actorPrefix(service)...)
	g.num(b, fActor, u.aw, uint64(actor))
	b.buf = append(b.buf, `@example.com"},"target":{"type":"`...)
	b.buf = append(b.buf, targetTypes[def.ttype]...)
	b.buf = append(b.buf, `","id":"obj-`...)
	g.num(b, fTarget, u.tw, uint64(target))
	b.buf = append(b.buf, `","name":"`...)
	b.buf = append(b.buf, targetNames[def.ttype]...)
	g.num(b, fTarget, u.tw, uint64(target))
	b.buf = append(b.buf, `"},"group":{"id":"tenant-`...)
	g.num(b, fGroup, u.gw, uint64(group))
	b.buf = append(b.buf, `","name":"Tenant `...)
	g.num(b, fGroup, u.gw, uint64(group))
	b.buf = append(b.buf, `"},`...)

	s = b.buf
	switch def.kind {
	case "update":
		i := r.IntN(len(statuses) - 1)
		s = append(s, `"changes":[{"field":"status","old":"`...)
		s = append(s, statuses[i]...)
		s = append(s, `","new":"`...)
		s = append(s, statuses[i+1]...)
		s = append(s, `"},{"field":"title","old":"`...)
		w1, w2 := g.word(), g.word()
		s = append(s, "Q"...)
		s = strconv.AppendInt(s, int64(1+r.IntN(4)), 10)
		s = append(s, ' ')
		s = append(s, w1...)
		s = append(s, ' ')
		s = append(s, w2...)
		s = append(s, ` plan","new":"`...)
		s = append(s, w1...)
		s = append(s, ' ')
		s = append(s, w2...)
		s = append(s, ` plan (final)"}],`...)
	case "create":
		s = append(s, `"changes":[{"field":"amount","new":"`...)
		s = strconv.AppendInt(s, int64(10+r.IntN(99990)), 10)
		s = append(s, '.')
		s = appendPadded(s, uint64(r.IntN(100)), 2)
		s = append(s, `"},{"field":"currency","new":"EUR"}],`...)
	case "delete":
		s = append(s, `"changes":[{"field":"rules","old":"allow `...)
		s = append(s, g.word()...)
		s = append(s, ` export for managers"}],`...)
	}
	s = append(s, `"source":{"ip":"203.0.113.`...)
	s = strconv.AppendInt(s, int64(1+r.IntN(254)), 10)
	s = append(s, `","user_agent":"`...)
	b.buf = s
	b.buf = append(b.buf, userAgents[r.IntN(len(userAgents))]...)
	b.buf = append(b.buf, `","request_id":"req-`...)
	g.num(b, fRequest, requestIDWidth, r.Uint64N(1e12))

	s = append(b.buf, `"},"description":"`...)
	s = append(s, targetNames[def.ttype]...)
	s = append(s, def.kind...)
	s = append(s, " via "...)
	s = append(s, def.component...)
	s = append(s, ":"...)
	for range 3 + r.IntN(5) {
		s = append(s, ' ')
		s = append(s, g.word()...)
	}
	s = append(s, `","component":"`...)
	s = append(s, def.component...)
	s = append(s, `","version":"`...)
	s = append(s, versions[r.IntN(len(versions))]...)
	s = append(s, `"}`...)
	b.buf = s

	meta.slots[1] = int32(len(b.slots))
	b.events = append(b.events, meta)
}

// patch re-randomises every event's actor, target, group and request id
// in place (requests send a copy, see postBody).
func (b *body) patch(u *universe, r *rand.Rand) {
	for _, m := range b.events {
		actor := uint64(u.randActor(r, m.service))
		target := uint64(u.randTarget(r, int(m.ttype)))
		group := r.Uint64N(uint64(u.groups))
		req := r.Uint64N(1e12)
		for _, s := range b.slots[m.slots[0]:m.slots[1]] {
			var v uint64
			switch s.field {
			case fActor:
				v = actor
			case fTarget:
				v = target
			case fGroup:
				v = group
			case fRequest:
				v = req
			}
			writePadded(b.buf[s.off:int(s.off)+int(s.width)], v)
		}
	}
}

// meanEventSize is the mean encoded size of one event over bodies, without
// array brackets and separators.
func meanEventSize(bodies []*body) float64 {
	var size, n int
	for _, b := range bodies {
		size += len(b.buf)
		if !b.single {
			size -= 1 + len(b.events) // "[" ... "]" and n-1 commas
		}
		n += len(b.events)
	}
	if n == 0 {
		return 0
	}
	return float64(size) / float64(n)
}

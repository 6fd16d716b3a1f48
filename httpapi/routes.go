package httpapi

import (
	"net/http"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
)

// access says who may call a route.
type access int

const (
	accessUnset   access = iota
	public               // no credentials
	authenticated        // any valid key or session, of any org
	serverAdmin          // a server admin key
	orgWide              // Perm on every context of the path's org (a policy on "*")
	onContext            // Perm on the path's {ctx}
	onAnyContext         // Perm on at least one context of the path's org; the handler narrows
)

// rule is the permission a route needs. Server admins pass every rule.
type rule struct {
	access access
	perm   string
	// scoped: a readAudit grant limited to event groups suffices (the
	// handler then shows only matching events); otherwise readAudit must
	// cover every event of the context.
	scoped bool
}

func (r rule) String() string {
	switch r.access {
	case public:
		return "public"
	case authenticated:
		return "authenticated"
	case serverAdmin:
		return "server admin"
	case orgWide:
		return r.perm + " on all contexts"
	case onContext:
		if r.perm == authz.ReadAudit && !r.scoped {
			return "unscoped readAudit on the context"
		}
		if r.scoped {
			return r.perm + " on the context (group-scoped suffices)"
		}
		return r.perm + " on the context"
	case onAnyContext:
		return r.perm + " on any context (results narrowed)"
	}
	return "unset"
}

// route is one entry of the route table.
type route struct {
	pattern string // "METHOD /path/{param}"
	rule    rule
	summary string
	h       http.HandlerFunc
}

func (rt route) method() string { m, _, _ := strings.Cut(rt.pattern, " "); return m }
func (rt route) path() string   { _, p, _ := strings.Cut(rt.pattern, " "); return p }

// table is the one table of every route and the permission it needs. The
// permission-matrix test and the OpenAPI document are generated from it.
func (s *Server) table() []route {
	var (
		pub         = rule{access: public}
		anyone      = rule{access: authenticated}
		admin       = rule{access: serverAdmin}
		orgManage   = rule{access: orgWide, perm: authz.Manage}
		readLog     = rule{access: onContext, perm: authz.ReadAudit}               // whole log: tiles, proofs, export
		readEvents  = rule{access: onContext, perm: authz.ReadAudit, scoped: true} // events of the caller's groups
		searchAudit = rule{access: onAnyContext, perm: authz.ReadAudit, scoped: true}
	)
	rs := []route{
		{"GET /healthz", pub, "liveness", s.healthz},
		{"GET /readyz", pub, "readiness", s.readyz},
		{"GET /openapi.json", pub, "this API's OpenAPI 3.1 document", s.openapi},
		{"GET /metrics", admin, "Prometheus metrics", s.metrics},
		{"GET /debug/pprof/{name...}", admin, "Go runtime profiles", s.pprof},

		{"GET /log/{org}/{ctx}/checkpoint", pub, "latest published checkpoint (C2SP signed note)", s.getCheckpoint},
		{"GET /log/{org}/{ctx}/key", pub, "the log's note verifier key(s)", s.getKey},
		{"GET /log/{org}/{ctx}/keys", pub, "signing-key history", s.getKeys},
		{"GET /log/{org}/{ctx}/checkpoints", readLog, "history of signed checkpoints", s.listCheckpoints},
		{"GET /log/{org}/{ctx}/tile/{path...}", readLog, "C2SP tlog-tiles Merkle tile or entry bundle", s.getTile},
		{"GET /log/{org}/{ctx}/proof/inclusion", readLog, "RFC 6962 inclusion proof", s.proveInclusion},
		{"GET /log/{org}/{ctx}/proof/consistency", readLog, "RFC 6962 consistency proof", s.proveConsistency},

		{"GET /api/v1/whoami", anyone, "the calling principal and key", s.whoami},
		{"POST /api/v1/logout", anyone, "revoke the calling session", s.logout},
		{"POST /api/v1/orgs/{org}/login", pub, "log in as a local user: returns a session token", s.login},

		{"POST /api/v1/orgs", admin, "create an org", s.createOrg},
		{"GET /api/v1/orgs", admin, "list orgs", s.listOrgs},

		{"POST /api/v1/orgs/{org}/contexts", rule{access: orgWide, perm: authz.Create}, "create an audit context", s.createContext},
		{"GET /api/v1/orgs/{org}/contexts", rule{access: onAnyContext, perm: authz.View}, "list the audit contexts the caller may view", s.listContexts},
		{"GET /api/v1/orgs/{org}/contexts/{ctx}", rule{access: onContext, perm: authz.View, scoped: true}, "get an audit context", s.getContext},
		{"PATCH /api/v1/orgs/{org}/contexts/{ctx}", rule{access: onContext, perm: authz.Edit}, "edit an audit context (description, tags, redaction, witnesses)", s.patchContext},
		{"GET /api/v1/orgs/{org}/contexts/{ctx}/access", rule{access: onContext, perm: authz.Manage}, "access report: who holds which permission and why", s.accessReport},
		{"POST /api/v1/orgs/{org}/contexts/{ctx}/events", rule{access: onContext, perm: authz.WriteAudit}, "write events", s.writeEvents},
		{"GET /api/v1/orgs/{org}/contexts/{ctx}/events/{id}", readEvents, "get one event with its leaf", s.getEvent},
		{"GET /api/v1/orgs/{org}/contexts/{ctx}/events/{id}/receipt", readEvents, "C2SP tlog-proof receipt of one event", s.getReceipt},
		{"GET /api/v1/orgs/{org}/contexts/{ctx}/export", readLog, "the whole log as a verifiable tar bundle", s.export},
		{"GET /api/v1/orgs/{org}/events", searchAudit, "search the org's events", s.searchEvents},
		{"GET /api/v1/orgs/{org}/trail/{target_type}/{target_id}", searchAudit, "one object's trail", s.trail},

		{"GET /api/v1/orgs/{org}/keys", orgManage, "list API keys", s.listKeys},
		{"POST /api/v1/orgs/{org}/keys", orgManage, "create an API key for a service account or identity (secret shown once)", s.createKey},
		{"POST /api/v1/orgs/{org}/keys/{id}/revoke", orgManage, "revoke an API key", s.revokeKey},

		{"GET /api/v1/orgs/{org}/policies", orgManage, "list policies", s.listPolicies},
		{"POST /api/v1/orgs/{org}/policies", orgManage, "create a policy", s.createPolicy},
		{"GET /api/v1/orgs/{org}/policies/{name}", orgManage, "get a policy", s.getPolicy},
		{"PUT /api/v1/orgs/{org}/policies/{name}", orgManage, "replace a policy", s.putPolicy},
		{"DELETE /api/v1/orgs/{org}/policies/{name}", orgManage, "delete a policy", s.deletePolicy},

		// A forwarder ships whole logs out of Cairn: configuring one is an
		// org administrator's act, like a policy.
		{"POST /api/v1/orgs/{org}/forwarders", orgManage, "create a forwarder", s.createForwarder},
		{"GET /api/v1/orgs/{org}/forwarders", orgManage, "list forwarders with their status (secrets masked)", s.listForwarders},
		{"GET /api/v1/orgs/{org}/forwarders/{name}", orgManage, "get a forwarder (secrets masked)", s.getForwarder},
		{"PUT /api/v1/orgs/{org}/forwarders/{name}", orgManage, "replace a forwarder", s.putForwarder},
		{"PATCH /api/v1/orgs/{org}/forwarders/{name}", orgManage, "edit a forwarder (JSON merge patch)", s.putForwarder},
		{"DELETE /api/v1/orgs/{org}/forwarders/{name}", orgManage, "delete a forwarder and its cursors", s.deleteForwarder},
		{"POST /api/v1/orgs/{org}/forwarders/{name}/pause", orgManage, "pause a forwarder", s.pauseForwarder},
		{"POST /api/v1/orgs/{org}/forwarders/{name}/resume", orgManage, "resume a paused or parked forwarder", s.resumeForwarder},
		{"POST /api/v1/orgs/{org}/forwarders/{name}/replay", orgManage, "replay from a seq or a time", s.replayForwarder},
		{"POST /api/v1/orgs/{org}/forwarders/{name}/test", orgManage, "send one synthetic event and report the answer", s.testForwarder},
		{"GET /api/v1/orgs/{org}/forwarders/{name}/status", orgManage, "delivery status: cursors, lag, errors", s.forwarderStatus},

		{"POST /api/v1/orgs/{org}/groups/{name}/members", orgManage, "add a member to a group", s.addMember},
		{"DELETE /api/v1/orgs/{org}/groups/{name}/members/{kind}/{member}", orgManage, "remove a member from a group", s.removeMember},
	}
	for _, kind := range cairn.PrincipalKinds {
		base := "/api/v1/orgs/{org}/" + collection(kind)
		rs = append(rs,
			route{"GET " + base, orgManage, "list " + collection(kind), s.listPrincipals(kind)},
			route{"POST " + base, orgManage, "create a " + kind, s.createPrincipal(kind)},
			route{"GET " + base + "/{name}", orgManage, "get a " + kind, s.getPrincipal(kind)},
			route{"PATCH " + base + "/{name}", orgManage, "edit a " + kind, s.patchPrincipal(kind)},
			route{"DELETE " + base + "/{name}", orgManage, "delete a " + kind + " (revokes its keys)", s.deletePrincipal(kind)},
		)
	}
	return rs
}

// collection is the URL segment of a principal kind.
func collection(kind string) string {
	if kind == cairn.PrincipalIdentity {
		return "identities"
	}
	return kind + "s"
}

// routes registers the table.
func (s *Server) routes() {
	s.routeTable = s.table()
	for _, rt := range s.routeTable {
		if rt.rule.access == accessUnset {
			panic("httpapi: route " + rt.pattern + " has no access rule")
		}
		s.mux.Handle(rt.pattern, s.wrap(rt.pattern, rt.h, rt.rule))
	}
	s.compatRoutes()
	s.mux.Handle("/", s.wrap("unmatched", func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, cairn.Errorf(cairn.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	}, rule{access: public}))
}

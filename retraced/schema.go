package retraced

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cairn-audit/cairn"
	"github.com/graphql-go/graphql"
	"github.com/graphql-go/graphql/gqlerrors"
)

// Scope is what a caller may see: always one org (the project) and
// context (the environment); viewers and enterprise tokens also one group,
// viewers optionally one target.
type Scope struct {
	Org, Context string
	GroupID      string
	TargetID     string
}

// Source reads events for the resolvers. Errors are *cairn.Error.
type Source interface {
	// Scan calls visit with every event of org matching f (context, group,
	// and the query's indexable terms), newest committed first, with its
	// stored leaf, until visit returns false.
	Scan(ctx context.Context, org string, f cairn.Filter, visit func(e *cairn.Event, leaf []byte) bool) error
	// GroupName returns the most recent non-empty name sent for a group id
	// in a context, or "".
	GroupName(ctx context.Context, org, context, groupID string) (string, error)
}

// Request is a GraphQL request body.
type Request struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

// Executor runs GraphQL requests against Retraced's schema.
type Executor struct {
	schema graphql.Schema
	src    Source
}

// DefaultPageSize is the page size when neither first nor last is given
// (Retraced's Postgres mode).
const DefaultPageSize = 20

// MaxPageSize bounds first, last and pageLimit.
const MaxPageSize = 1000

// NewExecutor builds the schema.
func NewExecutor(src Source) (*Executor, error) {
	x := &Executor{src: src}
	schema, err := graphql.NewSchema(graphql.SchemaConfig{Query: x.queryType()})
	if err != nil {
		return nil, fmt.Errorf("retraced schema: %w", err)
	}
	x.schema = schema
	return x, nil
}

type scopeKey struct{}

type sinkKey struct{}

// errSink records the first resolver error's cause: resolvers return
// caller-safe messages only, and the HTTP layer chooses the status.
type errSink struct {
	mu         sync.Mutex
	err        error
	groupNames map[string]*string // group.name lookups of this request
}

// Do executes one request within scope. err is the cause of the first
// resolver failure, if any (its code chooses the HTTP status); validation
// and syntax errors are in the result only.
func (x *Executor) Do(ctx context.Context, scope Scope, req Request) (res *graphql.Result, err error) {
	if req.Query == "" {
		return &graphql.Result{Errors: []gqlerrors.FormattedError{{Message: "query is required"}}}, nil
	}
	if err := checkDocument(req.Query); err != nil {
		return &graphql.Result{Errors: []gqlerrors.FormattedError{{Message: err.Error()}}}, nil
	}
	sink := &errSink{groupNames: map[string]*string{}}
	ctx = context.WithValue(context.WithValue(ctx, scopeKey{}, scope), sinkKey{}, sink)
	res = graphql.Do(graphql.Params{
		Schema: x.schema, RequestString: req.Query, VariableValues: req.Variables,
		OperationName: req.OperationName, Context: ctx,
	})
	return res, sink.err
}

// resolver adapts a resolver so that its error reaches the caller as a
// safe message and the sink keeps the cause.
func resolver(f func(graphql.ResolveParams) (any, error)) graphql.FieldResolveFn {
	return func(p graphql.ResolveParams) (any, error) {
		v, err := f(p)
		if err == nil {
			return v, nil
		}
		if sink, ok := p.Context.Value(sinkKey{}).(*errSink); ok {
			sink.mu.Lock()
			if sink.err == nil {
				sink.err = err
			}
			sink.mu.Unlock()
		}
		return nil, errors.New(cairn.ErrorMessage(err))
	}
}

func (x *Executor) queryType() *graphql.Object {
	str := graphql.String
	fieldType := graphql.NewObject(graphql.ObjectConfig{Name: "Field", Fields: graphql.Fields{
		"key": {Type: str}, "value": {Type: str}}})
	fields := graphql.NewList(fieldType)
	crud := graphql.NewEnum(graphql.EnumConfig{Name: "CRUD", Values: graphql.EnumValueConfigMap{
		"c": {Value: "c"}, "r": {Value: "r"}, "u": {Value: "u"}, "d": {Value: "d"}}})
	group := graphql.NewObject(graphql.ObjectConfig{Name: "Group", Fields: graphql.Fields{
		"id": {Type: str}, "name": {Type: str, Resolve: resolver(x.groupName)}}})
	actor := graphql.NewObject(graphql.ObjectConfig{Name: "Actor", Fields: graphql.Fields{
		"id": {Type: str}, "name": {Type: str}, "href": {Type: str}, "fields": {Type: fields}}})
	target := graphql.NewObject(graphql.ObjectConfig{Name: "Target", Fields: graphql.Fields{
		"id": {Type: str}, "name": {Type: str}, "href": {Type: str}, "type": {Type: str}, "fields": {Type: fields}}})
	display := graphql.NewObject(graphql.ObjectConfig{Name: "Display", Fields: graphql.Fields{
		"markdown": {Type: str}}})
	event := graphql.NewObject(graphql.ObjectConfig{Name: "Event", Fields: graphql.Fields{
		"id": {Type: graphql.ID}, "action": {Type: str}, "description": {Type: str}, "crud": {Type: crud},
		"received": {Type: str}, "created": {Type: str}, "canonical_time": {Type: str},
		"is_failure": {Type: graphql.Boolean}, "is_anonymous": {Type: graphql.Boolean},
		"source_ip": {Type: str}, "country": {Type: str}, "loc_subdiv1": {Type: str}, "loc_subdiv2": {Type: str},
		"component": {Type: str}, "version": {Type: str}, "raw": {Type: str}, "external_id": {Type: str},
		"fields": {Type: fields}, "metadata": {Type: fields},
		"group": {Type: group}, "actor": {Type: actor}, "target": {Type: target}, "display": {Type: display},
	}})
	pageInfo := graphql.NewObject(graphql.ObjectConfig{Name: "PageInfo", Fields: graphql.Fields{
		"hasNextPage": {Type: graphql.NewNonNull(graphql.Boolean)}, "hasPreviousPage": {Type: graphql.NewNonNull(graphql.Boolean)}}})
	edge := graphql.NewObject(graphql.ObjectConfig{Name: "EventEdge", Fields: graphql.Fields{
		"node": {Type: event}, "cursor": {Type: graphql.NewNonNull(str)}}})
	conn := graphql.NewObject(graphql.ObjectConfig{Name: "EventsConnection", Fields: graphql.Fields{
		"edges": {Type: graphql.NewList(edge)}, "pageInfo": {Type: graphql.NewNonNull(pageInfo)},
		"totalCount": {Type: graphql.NewNonNull(graphql.Int)}}})
	countNode := graphql.NewObject(graphql.ObjectConfig{Name: "Count", Fields: graphql.Fields{
		"action": {Type: str}, "group": {Type: group}, "count": {Type: graphql.Int}}})
	countEdge := graphql.NewObject(graphql.ObjectConfig{Name: "CountEdge", Fields: graphql.Fields{
		"node": {Type: countNode}, "cursor": {Type: graphql.NewNonNull(str)}}})
	counts := graphql.NewObject(graphql.ObjectConfig{Name: "CountsConnection", Fields: graphql.Fields{
		"edges": {Type: graphql.NewList(countEdge)}, "pageInfo": {Type: graphql.NewNonNull(pageInfo)},
		"totalCount": {Type: graphql.NewNonNull(graphql.Int)}}})

	return graphql.NewObject(graphql.ObjectConfig{Name: "Query", Fields: graphql.Fields{
		"search": {Type: conn, Args: graphql.FieldConfigArgument{
			"query": {Type: str}, "first": {Type: graphql.Int}, "after": {Type: str},
			"last": {Type: graphql.Int}, "before": {Type: str}}, Resolve: resolver(x.search)},
		"searchPaginated": {Type: conn, Args: graphql.FieldConfigArgument{
			"query": {Type: str}, "pageOffset": {Type: graphql.Int, DefaultValue: 0},
			"pageLimit": {Type: graphql.Int, DefaultValue: DefaultPageSize}, "startCursor": {Type: str},
			"sortOrder": {Type: str, DefaultValue: "desc"}}, Resolve: resolver(x.searchPaginated)},
		"counts": {Type: counts, Args: graphql.FieldConfigArgument{
			"type": {Type: graphql.NewNonNull(str)}, "startTime": {Type: str}, "endTime": {Type: str},
			"crud": {Type: str}, "first": {Type: graphql.Int}, "after": {Type: str}}, Resolve: resolver(x.counts)},
	}})
}

// Connection is the resolved EventsConnection.
type Connection struct {
	Edges      []Edge   `json:"edges"`
	PageInfo   PageInfo `json:"pageInfo"`
	TotalCount int      `json:"totalCount"`
}

type Edge struct {
	Node   *EventNode `json:"node"`
	Cursor string     `json:"cursor"`
}

type PageInfo struct {
	HasNextPage     bool `json:"hasNextPage"`
	HasPreviousPage bool `json:"hasPreviousPage"`
}

func scopeOf(ctx context.Context) (Scope, error) {
	s, ok := ctx.Value(scopeKey{}).(Scope)
	if !ok || s.Org == "" || s.Context == "" {
		return s, errors.New("no scope")
	}
	return s, nil
}

// matches returns every event in scope matching the query string, sorted
// ascending by (canonical time, id).
func (x *Executor) matches(ctx context.Context, query string) ([]*EventNode, error) {
	scope, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	q, err := ParseQuery(query)
	if err != nil {
		return nil, err
	}
	f := q.Filter()
	f.Context, f.GroupID = scope.Context, scope.GroupID
	if scope.TargetID != "" {
		f.TargetID = scope.TargetID
	}
	var out []*EventNode
	err = x.src.Scan(ctx, scope.Org, f, func(e *cairn.Event, leaf []byte) bool {
		if scope.GroupID != "" && (e.Group == nil || e.Group.ID != scope.GroupID) ||
			scope.TargetID != "" && (e.Target == nil || e.Target.ID != scope.TargetID) || !q.Match(e) {
			return true
		}
		n := nodeOf(e)
		raw := string(leaf)
		n.Raw = &raw
		out = append(out, n)
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *EventNode) int { return compareKeys(a.key(), b.key()) })
	return out, nil
}

// groupName resolves group.name: as sent, or else (only when the field is
// requested) from the group's most recent named event, as Retraced fills it
// from its group record. Lookups are cached for the request.
func (x *Executor) groupName(p graphql.ResolveParams) (any, error) {
	var g GroupNode
	switch v := p.Source.(type) {
	case GroupNode:
		g = v
	case *GroupNode:
		g = *v
	}
	if g.Name != nil || g.ID == nil {
		return g.Name, nil
	}
	scope, err := scopeOf(p.Context)
	if err != nil {
		return nil, err
	}
	sink, _ := p.Context.Value(sinkKey{}).(*errSink)
	if sink != nil {
		sink.mu.Lock()
		name, ok := sink.groupNames[*g.ID]
		sink.mu.Unlock()
		if ok {
			return name, nil
		}
	}
	s, err := x.src.GroupName(p.Context, scope.Org, scope.Context, *g.ID)
	if err != nil {
		return nil, err
	}
	name := ptr(s)
	if sink != nil {
		sink.mu.Lock()
		sink.groupNames[*g.ID] = name
		sink.mu.Unlock()
	}
	return name, nil
}

// Cursors are base64("<canonical time ms>,<id>"), as upstream.
func cursorOf(n *EventNode) string {
	k := n.key()
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatInt(k.ms, 10) + "," + k.id))
}

func parseCursor(c string) (sortKey, error) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err == nil {
		ms, id, ok := strings.Cut(string(b), ",")
		if n, err := strconv.ParseInt(ms, 10, 64); ok && err == nil {
			return sortKey{n, id}, nil
		}
	}
	return sortKey{}, cairn.Errorf(cairn.EInvalid, "cursor is not one this server issued")
}

func intArg(args map[string]any, name string) (int, bool, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return 0, false, nil
	}
	n, _ := v.(int)
	if n < 0 || n > MaxPageSize {
		return 0, false, cairn.Errorf(cairn.EInvalid, "%s must be from 0 to %d", name, MaxPageSize)
	}
	return n, true, nil
}

func strArg(args map[string]any, name string) string {
	s, _ := args[name].(string)
	return s
}

func (x *Executor) search(p graphql.ResolveParams) (any, error) {
	first, hasFirst, err := intArg(p.Args, "first")
	if err != nil {
		return nil, err
	}
	last, hasLast, err := intArg(p.Args, "last")
	if err != nil {
		return nil, err
	}
	if hasFirst && hasLast {
		return nil, cairn.Errorf(cairn.EInvalid, "first and last cannot be used together")
	}
	after, before := strArg(p.Args, "after"), strArg(p.Args, "before")
	all, err := x.matches(p.Context, strArg(p.Args, "query"))
	if err != nil {
		return nil, err
	}
	c := &Connection{TotalCount: len(all), Edges: []Edge{}}
	desc := hasLast
	size := DefaultPageSize
	switch {
	case hasFirst:
		size = first
	case hasLast:
		size = last
	}
	list := all
	if desc {
		list = slices.Clone(all)
		slices.Reverse(list)
	}
	start := 0
	cursor := after
	if desc {
		cursor = before
	}
	if cursor != "" {
		k, err := parseCursor(cursor)
		if err != nil {
			return nil, err
		}
		start = len(list)
		for i, n := range list {
			cmp := compareKeys(n.key(), k)
			if desc && cmp < 0 || !desc && cmp > 0 {
				start = i
				break
			}
		}
	}
	end := min(start+size, len(list))
	for _, n := range list[start:end] {
		c.Edges = append(c.Edges, Edge{Node: n, Cursor: cursorOf(n)})
	}
	more := end < len(list)
	if desc {
		c.PageInfo = PageInfo{HasPreviousPage: more, HasNextPage: before != ""}
	} else {
		c.PageInfo = PageInfo{HasNextPage: more, HasPreviousPage: after != ""}
	}
	return c, nil
}

func (x *Executor) searchPaginated(p graphql.ResolveParams) (any, error) {
	offset, _, err := intArgNoMax(p.Args, "pageOffset")
	if err != nil {
		return nil, err
	}
	limit, _, err := intArg(p.Args, "pageLimit")
	if err != nil {
		return nil, err
	}
	all, err := x.matches(p.Context, strArg(p.Args, "query"))
	if err != nil {
		return nil, err
	}
	list := all
	switch order := strings.ToLower(strArg(p.Args, "sortOrder")); order {
	case "", "desc":
		list = slices.Clone(all)
		slices.Reverse(list)
	case "asc":
	default:
		return nil, cairn.Errorf(cairn.EInvalid, "sortOrder must be asc or desc")
	}
	// startCursor pins the window: events after it (newer, for desc) are
	// left out, so new events do not shift pages.
	if sc := strArg(p.Args, "startCursor"); sc != "" {
		k, err := parseCursor(sc)
		if err != nil {
			return nil, err
		}
		pinned := list[:0:0]
		for _, n := range list {
			if compareKeys(n.key(), k) <= 0 {
				pinned = append(pinned, n)
			}
		}
		list = pinned
	}
	c := &Connection{TotalCount: len(list), Edges: []Edge{}}
	start := min(offset, len(list))
	end := min(start+limit, len(list))
	for _, n := range list[start:end] {
		c.Edges = append(c.Edges, Edge{Node: n, Cursor: cursorOf(n)})
	}
	c.PageInfo = PageInfo{HasNextPage: end < len(list), HasPreviousPage: start > 0}
	return c, nil
}

func intArgNoMax(args map[string]any, name string) (int, bool, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return 0, false, nil
	}
	n, _ := v.(int)
	if n < 0 {
		return 0, false, cairn.Errorf(cairn.EInvalid, "%s must not be negative", name)
	}
	return n, true, nil
}

// CountEdge and friends are the resolved CountsConnection.
type countNode struct {
	Action *string    `json:"action"`
	Group  *GroupNode `json:"group"`
	Count  int        `json:"count"`
}

type countEdge struct {
	Node   *countNode `json:"node"`
	Cursor string     `json:"cursor"`
}

type countsConnection struct {
	Edges      []countEdge `json:"edges"`
	PageInfo   PageInfo    `json:"pageInfo"`
	TotalCount int         `json:"totalCount"`
}

func (x *Executor) counts(p graphql.ResolveParams) (any, error) {
	typ := strArg(p.Args, "type")
	if typ != "action" && typ != "group" {
		return nil, cairn.Errorf(cairn.EInvalid, `type must be "action" or "group"`)
	}
	var terms []string
	if s, e := strArg(p.Args, "startTime"), strArg(p.Args, "endTime"); s != "" || e != "" {
		terms = append(terms, "received:"+s+","+e)
	}
	if c := strArg(p.Args, "crud"); c != "" {
		terms = append(terms, "crud:"+c)
	}
	all, err := x.matches(p.Context, strings.Join(terms, " "))
	if err != nil {
		return nil, err
	}
	byKey := map[string]*countNode{}
	var order []string
	for _, n := range all {
		var k string
		if typ == "action" {
			k = n.Action
		} else if n.Group.ID != nil {
			k = *n.Group.ID
		}
		cn, ok := byKey[k]
		if !ok {
			cn = &countNode{}
			if typ == "action" {
				cn.Action = ptr(n.Action)
			} else {
				g := n.Group
				cn.Group = &g
			}
			byKey[k] = cn
			order = append(order, k)
		}
		cn.Count++
	}
	slices.SortFunc(order, func(a, b string) int {
		if c := byKey[b].Count - byKey[a].Count; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	first, hasFirst, err := intArg(p.Args, "first")
	if err != nil {
		return nil, err
	}
	if !hasFirst {
		first = DefaultPageSize
	}
	start := 0
	if a := strArg(p.Args, "after"); a != "" {
		b, err := base64.StdEncoding.DecodeString(a)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			return nil, cairn.Errorf(cairn.EInvalid, "cursor is not one this server issued")
		}
		start = min(n+1, len(order))
	}
	end := min(start+first, len(order))
	c := &countsConnection{TotalCount: len(order), Edges: []countEdge{}}
	for i := start; i < end; i++ {
		c.Edges = append(c.Edges, countEdge{Node: byKey[order[i]], Cursor: base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(i)))})
	}
	c.PageInfo = PageInfo{HasNextPage: end < len(order), HasPreviousPage: start > 0}
	return c, nil
}

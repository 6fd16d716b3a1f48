package httpapi

import (
	"net/http"
	"regexp"
	"strings"
)

var pathParam = regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)

// openAPIPath turns a ServeMux pattern path into an OpenAPI path template.
func openAPIPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

// OpenAPI returns the OpenAPI 3.1 document of the server's routes,
// generated from the route table: every route, its parameters, whether it
// needs a bearer key, and the permission it needs (x-cairn-permission).
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]any{}
	for _, rt := range s.routeTable {
		p := openAPIPath(rt.path())
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path(), -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		op := map[string]any{
			"operationId": operationID(rt),
			"summary":     rt.summary,
			"responses": map[string]any{
				"2XX":     map[string]any{"description": "success"},
				"default": map[string]any{"$ref": "#/components/responses/Error"},
			},
			"x-cairn-permission": rt.rule.String(),
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.rule.access == public {
			op["security"] = []any{}
		}
		if m := rt.method(); m == "POST" || m == "PUT" || m == "PATCH" {
			op["requestBody"] = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		item[strings.ToLower(rt.method())] = op
	}
	errSchema := map[string]any{"type": "object", "required": []any{"error"}, "properties": map[string]any{
		"error": map[string]any{"type": "object", "required": []any{"code", "message"}, "properties": map[string]any{
			"code": map[string]any{"type": "string", "enum": []any{"invalid", "unauthorized", "forbidden", "not_found",
				"conflict", "too_large", "unavailable", "rate_limited", "integrity", "internal"}},
			"message":    map[string]any{"type": "string"},
			"request_id": map[string]any{"type": "string"},
		}}}}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Cairn", "version": "v1",
			"description": "Tamper-evident audit trails. See docs/api.md and docs/access-control.md."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer",
				"description": "an API key or a login session token (cairn_...)"}},
			"schemas":   map[string]any{"Error": errSchema},
			"responses": map[string]any{"Error": map[string]any{"description": "an error", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}},
		},
	}
}

func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.method()))
	for _, seg := range strings.Split(openAPIPath(rt.path()), "/") {
		seg = strings.Trim(seg, "{}")
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '_' || r == '.' || r == '-' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.OpenAPI())
}

package retraced

import (
	"fmt"

	"github.com/graphql-go/graphql/language/ast"
	"github.com/graphql-go/graphql/language/parser"
	"github.com/graphql-go/graphql/language/source"
)

// MaxGraphQLQuery bounds a GraphQL document's length.
const MaxGraphQLQuery = 64 << 10

// maxSelectionDepth bounds nesting (Retraced's schema is four levels deep).
const maxSelectionDepth = 12

// checkDocument is Retraced's NoDuplicateFields rule (a DoS guard: no
// field may be requested twice in one selection set) plus bounds on the
// document's size and depth. Syntax errors are left to the executor, which
// reports them in its own format.
func checkDocument(query string) error {
	if len(query) > MaxGraphQLQuery {
		return fmt.Errorf("the query is longer than %d bytes", MaxGraphQLQuery)
	}
	doc, err := parser.Parse(parser.ParseParams{Source: source.NewSource(&source.Source{Body: []byte(query)})})
	if err != nil {
		return nil
	}
	for _, def := range doc.Definitions {
		var ss *ast.SelectionSet
		switch d := def.(type) {
		case *ast.OperationDefinition:
			ss = d.SelectionSet
		case *ast.FragmentDefinition:
			ss = d.SelectionSet
		}
		if err := checkSelections(ss, 1); err != nil {
			return err
		}
	}
	return nil
}

func checkSelections(ss *ast.SelectionSet, depth int) error {
	if ss == nil {
		return nil
	}
	if depth > maxSelectionDepth {
		return fmt.Errorf("the query is nested deeper than %d levels", maxSelectionDepth)
	}
	seen := map[string]bool{}
	for _, sel := range ss.Selections {
		switch s := sel.(type) {
		case *ast.Field:
			name := s.Name.Value
			if s.Alias != nil {
				name = s.Alias.Value
			}
			if seen[name] {
				return fmt.Errorf("field %q is requested more than once", name)
			}
			seen[name] = true
			if err := checkSelections(s.SelectionSet, depth+1); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := checkSelections(s.SelectionSet, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

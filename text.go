package cairn

import (
	"encoding/json"
	"fmt"
)

// ValueText is the text free-text search matches for a change's old or
// new value: a string as it is, a number or boolean as Go prints it, and
// anything else as its JSON. Every engine indexes the same text.
func ValueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool, float64, int64, int:
		return fmt.Sprint(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

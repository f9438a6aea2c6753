package sensors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPathLen bounds a JSON path in the configuration.
const MaxPathLen = 256

// Path is a parsed JSON path of an MQTT sensor (MQTTRef.Path): object
// keys separated by dots, array elements as [n], e.g. "a.b[0].c",
// "[1].value". An empty path is the whole payload.
type Path []PathStep

// PathStep is one step of a Path: an object key, or an array index.
type PathStep struct {
	Key     string
	Index   int
	IsIndex bool
}

// ParsePath parses s. Keys are any characters but '.', '[' and ']';
// indexes are decimal, at most 999999.
func ParsePath(s string) (Path, error) {
	if len(s) > MaxPathLen {
		return nil, fmt.Errorf("path longer than %d characters", MaxPathLen)
	}
	var p Path
	for i := 0; i < len(s); {
		switch {
		case s[i] == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: [ without ]", s)
			}
			digits := s[i+1 : i+end]
			n, err := strconv.Atoi(digits)
			if err != nil || n < 0 || len(digits) > 6 || digits != strconv.Itoa(n) {
				return nil, fmt.Errorf("path %q: [%s] is not an array index", s, digits)
			}
			p = append(p, PathStep{Index: n, IsIndex: true})
			i += end + 1
		case s[i] == '.' && i == 0, s[i] == '.' && i == len(s)-1, s[i] == ']':
			return nil, fmt.Errorf("path %q: stray %q at %d", s, s[i], i)
		default:
			if i > 0 { // a key follows a dot, unless it starts the path
				if s[i] != '.' {
					return nil, fmt.Errorf("path %q: want . or [ at %d", s, i)
				}
				i++
			}
			end := strings.IndexAny(s[i:], ".[]")
			if end < 0 {
				end = len(s) - i
			}
			if end == 0 {
				return nil, fmt.Errorf("path %q: empty key at %d", s, i)
			}
			p = append(p, PathStep{Key: s[i : i+end]})
			i += end
		}
	}
	return p, nil
}

// String writes the path back as ParsePath reads it.
func (p Path) String() string {
	var b strings.Builder
	for i, st := range p {
		switch {
		case st.IsIndex:
			fmt.Fprintf(&b, "[%d]", st.Index)
		case i > 0:
			b.WriteString("." + st.Key)
		default:
			b.WriteString(st.Key)
		}
	}
	return b.String()
}

// ErrNoValue is Lookup's answer when the path leads nowhere.
var ErrNoValue = errors.New("no value at the path")

// Lookup follows the path through v, a value decoded by encoding/json
// (map[string]any, []any, float64, bool, string, nil).
func (p Path) Lookup(v any) (any, error) {
	for _, st := range p {
		switch x := v.(type) {
		case map[string]any:
			if st.IsIndex {
				return nil, ErrNoValue
			}
			var ok bool
			if v, ok = x[st.Key]; !ok {
				return nil, ErrNoValue
			}
		case []any:
			if !st.IsIndex || st.Index >= len(x) {
				return nil, ErrNoValue
			}
			v = x[st.Index]
		default:
			return nil, ErrNoValue
		}
	}
	return v, nil
}

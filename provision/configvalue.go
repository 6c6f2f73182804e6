package provision

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// valueType names the type of a configuration value as the device's tree
// shows it. Mongoose OS prints doubles with a fraction ("2.000000") and
// integers without, which is how the two are told apart.
func valueType(cur any) string {
	switch v := cur.(type) {
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			return "number"
		}
		return "integer"
	case nil, string:
		return "string" // unset strings come as "" and never as null; be lenient
	}
	return "unsupported"
}

// convert turns v into a value of cur's type. Strings are parsed (the CLI
// passes everything as text); other Go values must fit as they are.
func convert(key string, cur, v any) (any, error) {
	typ := valueType(cur)
	bad := &TypeError{Key: key, Type: typ, Value: v}
	switch typ {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true", "1", "yes", "on":
				return true, nil
			case "false", "0", "no", "off":
				return false, nil
			}
		}
	case "integer":
		n, ok := toInt(v)
		// Firmware integers are C ints: 32 bits. Unsigned values up to
		// 2^32-1 are allowed, as some keys hold masks.
		if ok && n >= math.MinInt32 && n <= math.MaxUint32 {
			return n, nil
		}
	case "number":
		if f, ok := toFloat(v); ok {
			return f, nil
		}
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, bad
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint32:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 0, 64)
		return n, err == nil
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// sameValue reports whether the device already holds v (converted to the
// type of cur).
func sameValue(cur, v any) bool {
	switch c := cur.(type) {
	case json.Number:
		if n, ok := v.(int64); ok {
			m, err := c.Int64()
			return err == nil && m == n
		}
		f, _ := c.Float64()
		g, ok := v.(float64)
		return ok && f == g
	case nil:
		return v == ""
	}
	return cur == v
}

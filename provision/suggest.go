package provision

import (
	"slices"
	"strings"
)

// suggestKeys picks up to three existing keys the user may have meant:
// the nearest within a small edit distance of the whole key, or else
// those whose last parts match what was typed (a bare "ssid" finds
// wifi.sta.ssid).
func suggestKeys(key string, keys []string) []string {
	type cand struct {
		key  string
		dist int
	}
	limit := max(2, len(key)/4)
	var near []cand
	for _, k := range keys {
		if d := editDistance(key, k); d <= limit {
			near = append(near, cand{k, d})
		}
	}
	if len(near) == 0 {
		for _, k := range keys {
			if strings.HasSuffix(k, "."+key) {
				near = append(near, cand{k, 0})
			}
		}
	}
	slices.SortFunc(near, func(a, b cand) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.key, b.key)
	})
	var out []string
	for _, c := range near[:min(3, len(near))] {
		if c.dist > near[0].dist {
			break // a nearer key makes the farther ones noise
		}
		out = append(out, c.key)
	}
	return out
}

// editDistance is the Levenshtein distance counting a transposition of two
// neighbouring characters as one edit (optimal string alignment), since
// "ssdi" for "ssid" is one slip of the fingers, not two.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// three rows: the one before the previous, the previous, the current
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

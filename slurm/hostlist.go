package slurm

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxHosts bounds what ExpandHostlist will produce, so that a typo such as
// `n[0-99999999]` is an error rather than gigabytes of host names.
const MaxHosts = 1_000_000

// ExpandHostlist expands a Slurm host list, as in SLURM_JOB_NODELIST, into
// host names in Slurm's order (`scontrol show hostnames` gives the same
// list):
//
//   - items are separated by commas (or white space) outside brackets; empty
//     items are ignored, so "" expands to no hosts;
//   - a bracket group holds comma-separated numbers and ranges, `[1,3,5-7]`;
//     a range's numbers are zero-padded to the width of its lower bound, so
//     `gpu[001-004,010],cpu7` is gpu001..gpu004, gpu010, cpu7 and `n[08-11]`
//     is n08..n11;
//   - a name may hold several groups, expanded as a product with the first
//     group varying slowest: `rack[1-2]-node[01-02]` is rack1-node01,
//     rack1-node02, rack2-node01, rack2-node02. With three or more groups
//     the order is Slurm's: the last group fastest, then the first, up to
//     the second-to-last slowest (`r[1-2]c[1-2]n[1-2]` starts r1c1n1,
//     r1c1n2, r2c1n1).
//
// Text after the last group (`n[1-2].ib`) is accepted, a superset of Slurm
// 22.05, which rejects it. Unbalanced or nested brackets, empty groups,
// reversed ranges (`[3-1]`), anything but digits in a range and lists of
// more than MaxHosts hosts are errors naming the offending part.
func ExpandHostlist(s string) ([]string, error) {
	items, err := splitTop(s)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, it := range items {
		segs, n, err := parseItem(it)
		if err != nil {
			return nil, fmt.Errorf("host list %q: %w", s, err)
		}
		if len(hosts)+n > MaxHosts {
			return nil, fmt.Errorf("host list %q expands to more than %d hosts: check the ranges", s, MaxHosts)
		}
		hosts = expandItem(hosts, segs)
	}
	return hosts, nil
}

// splitTop splits s at commas and white space outside brackets and checks
// that brackets are balanced and not nested.
func splitTop(s string) ([]string, error) {
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '[':
			if depth > 0 {
				return nil, fmt.Errorf("host list %q: nested '[' at offset %d", s, i)
			}
			depth++
		case ']':
			if depth == 0 {
				return nil, fmt.Errorf("host list %q: ']' without '[' at offset %d", s, i)
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				if i > start {
					items = append(items, s[start:i])
				}
				start = i + 1
			} else if c != ',' {
				return nil, fmt.Errorf("host list %q: white space inside brackets at offset %d", s, i)
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("host list %q: '[' is never closed", s)
	}
	if start < len(s) {
		items = append(items, s[start:])
	}
	return items, nil
}

// segment is a literal prefix followed by the numbers of one bracket group
// (none for the trailing literal).
type segment struct {
	prefix string
	nums   []string
}

// parseItem splits one host-list item into segments and returns how many
// hosts it expands to.
func parseItem(it string) ([]segment, int, error) {
	var segs []segment
	n := 1
	for {
		open := strings.IndexByte(it, '[')
		if open < 0 {
			segs = append(segs, segment{prefix: it})
			return segs, n, nil
		}
		end := strings.IndexByte(it, ']') // balanced and unnested: after open
		nums, err := parseGroup(it[open+1 : end])
		if err != nil {
			return nil, 0, err
		}
		if n *= len(nums); n > MaxHosts {
			return nil, 0, fmt.Errorf("%q expands to more than %d hosts: check the ranges", it, MaxHosts)
		}
		segs = append(segs, segment{prefix: it[:open], nums: nums})
		it = it[end+1:]
	}
}

// parseGroup expands the inside of one bracket group: "001-004,010".
func parseGroup(g string) ([]string, error) {
	if g == "" {
		return nil, fmt.Errorf("empty brackets []")
	}
	var out []string
	for _, r := range strings.Split(g, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isDigits(lo) || (isRange && !isDigits(hi)) {
			return nil, fmt.Errorf("range %q: want a number or LOW-HIGH with decimal digits", r)
		}
		if !isRange {
			out = append(out, lo)
			continue
		}
		a, err1 := strconv.ParseUint(lo, 10, 64)
		b, err2 := strconv.ParseUint(hi, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("range %q: number too large", r)
		}
		if a > b {
			return nil, fmt.Errorf("range %q is reversed (%d > %d)", r, a, b)
		}
		if b-a >= MaxHosts || len(out)+int(b-a+1) > MaxHosts {
			return nil, fmt.Errorf("range %q holds more than %d hosts", r, MaxHosts)
		}
		for v := a; ; v++ {
			out = append(out, fmt.Sprintf("%0*d", len(lo), v))
			if v == b {
				break
			}
		}
	}
	return out, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// expandItem appends the hosts of one item to hosts, in Slurm's order:
// the last group varies fastest; the groups before it vary, slowest first,
// from the second-to-last back to the first (Slurm's hostlist.c recurses
// on the prefix before the last group from its end). For two groups that
// is the plain product, first group slowest.
func expandItem(hosts []string, segs []segment) []string {
	var groups []int // indexes into segs of the bracket groups
	for i, s := range segs {
		if s.nums != nil {
			groups = append(groups, i)
		}
	}
	if len(groups) == 0 {
		return append(hosts, segs[0].prefix)
	}
	m := len(groups)
	order := make([]int, 0, m) // slowest first
	for k := m - 2; k >= 0; k-- {
		order = append(order, groups[k])
	}
	order = append(order, groups[m-1])
	pick := make([]int, len(segs))
	var walk func(level int)
	walk = func(level int) {
		if level == len(order) {
			var b strings.Builder
			for i, s := range segs {
				b.WriteString(s.prefix)
				if s.nums != nil {
					b.WriteString(s.nums[pick[i]])
				}
			}
			hosts = append(hosts, b.String())
			return
		}
		g := order[level]
		for j := range segs[g].nums {
			pick[g] = j
			walk(level + 1)
		}
	}
	walk(0)
	return hosts
}

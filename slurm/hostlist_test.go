package slurm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var hostlistCases = []struct {
	in       string
	want     []string
	earlOnly bool // Slurm 22.05 rejects it
}{
	{in: "", want: nil},
	{in: "node1", want: []string{"node1"}},
	{in: "gpu[001-004,010],cpu7", want: []string{"gpu001", "gpu002", "gpu003", "gpu004", "gpu010", "cpu7"}},
	{in: "rack[1-2]-node[01-02]", want: []string{"rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"}},
	{in: "n[5]", want: []string{"n5"}},
	{in: "n[1,1]", want: []string{"n1", "n1"}},
	{in: "n[1-2],n[2-3]", want: []string{"n1", "n2", "n2", "n3"}},
	{in: "n[08-11]", want: []string{"n08", "n09", "n10", "n11"}},
	{in: "n[9-11]", want: []string{"n9", "n10", "n11"}},
	{in: "n[1-010]", want: []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10"}},
	{in: "n[010-12]", want: []string{"n010", "n011", "n012"}},
	{in: "n[00-01]", want: []string{"n00", "n01"}},
	{in: "n[1,2-3,5]", want: []string{"n1", "n2", "n3", "n5"}},
	{in: "a,,b", want: []string{"a", "b"}},
	{in: "a b", want: []string{"a", "b"}},
	{in: "n1,n2,", want: []string{"n1", "n2"}},
	{in: ",n1", want: []string{"n1"}},
	{in: "[1-2]", want: []string{"1", "2"}},
	{in: "n-[1-2]", want: []string{"n-1", "n-2"}},
	{in: "n[1-2][3-4]", want: []string{"n13", "n14", "n23", "n24"}},
	{in: "n[1-2]-[3-4]", want: []string{"n1-3", "n1-4", "n2-3", "n2-4"}},
	{in: "a.b[1-2]", want: []string{"a.b1", "a.b2"}},
	{in: "r[1-2]c[1-2]n[1-2]", want: []string{"r1c1n1", "r1c1n2", "r2c1n1", "r2c1n2", "r1c2n1", "r1c2n2", "r2c2n1", "r2c2n2"}},
	{in: "a[1-2],b[3-4]", want: []string{"a1", "a2", "b3", "b4"}},
	// Accepted here, rejected by Slurm 22.05 (text after the last group).
	{in: "n[1-2].ib", want: []string{"n1.ib", "n2.ib"}, earlOnly: true},
	{in: "x[1-2]y[3-4]z", want: []string{"x1y3z", "x1y4z", "x2y3z", "x2y4z"}, earlOnly: true},
}

var hostlistErrors = []struct{ in, want string }{
	{"n[3-1]", "reversed"},
	{"n[1-3", "never closed"},
	{"n1-3]", "without '['"},
	{"n[[1-2]]", "nested"},
	{"n[1-2]]", "without '['"},
	{"n[a-c]", `range "a-c"`},
	{"n[]", "empty brackets"},
	{"n[1-]", `range "1-"`},
	{"n[-2]", `range "-2"`},
	{"n[1-2-3]", `range "1-2-3"`},
	{"n[ 1-2]", "white space"},
	{"n[1 ,2]", "white space"},
	{"n[0-99999999]", "more than 1000000"},
	{"a[0-999]b[0-1000]", "more than 1000000"},
	{"n[0-999999],m[0-1]", "more than 1000000"},
	{"n[99999999999999999999-99999999999999999999]", "too large"},
}

func TestExpandHostlist(t *testing.T) {
	for _, c := range hostlistCases {
		got, err := ExpandHostlist(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ExpandHostlist(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, c := range hostlistErrors {
		got, err := ExpandHostlist(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ExpandHostlist(%q) = %q, %v; want an error mentioning %q", c.in, got, err, c.want)
		}
	}
	// The limit itself is fine: 1000 x 1000 hosts.
	if got, err := ExpandHostlist("a[000-999]b[000-999]"); err != nil || len(got) != MaxHosts || got[MaxHosts-1] != "a999b999" {
		t.Errorf("a[000-999]b[000-999]: %d hosts, %v", len(got), err)
	}
}

// TestHostlistMatchesScontrol compares ExpandHostlist with Slurm's own
// expansion (`scontrol show hostnames`, installed by make deps), on the
// table above and on the error cases Slurm also rejects.
func TestHostlistMatchesScontrol(t *testing.T) {
	scontrol, err := exec.LookPath("scontrol")
	if err != nil {
		t.Fatalf("scontrol not found (%v): run make deps, which installs Debian's slurm-client", err)
	}
	// scontrol reads a slurm.conf even for show hostnames; a minimal one
	// keeps it from looking for a cluster.
	conf := filepath.Join(t.TempDir(), "slurm.conf")
	if err := os.WriteFile(conf, []byte("ClusterName=earltest\nSlurmctldHost=localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	show := func(list string) (string, error) {
		cmd := exec.Command(scontrol, "show", "hostnames", list)
		cmd.Env = append(os.Environ(), "SLURM_CONF="+conf)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	compared := 0
	for _, c := range hostlistCases {
		if c.earlOnly {
			continue
		}
		out, err := show(c.in)
		if err != nil {
			t.Fatalf("scontrol show hostnames %q: %v\n%s", c.in, err, out)
		}
		got := strings.Fields(out)
		want := c.want
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("scontrol show hostnames %q = %q; ExpandHostlist gives %q", c.in, got, want)
		}
		compared++
	}
	// Slurm's own errors (it accepts a few malformed forms that earl
	// rejects, such as n[1-] and unbalanced brackets).
	for _, in := range []string{"n[3-1]", "n[a-c]", "n[]", "n[-2]", "n[1-2-3]", "n[[1-2]]", "n[1-2]]", "n[0-99999999]"} {
		out, _ := show(in)
		if !strings.Contains(out, "Invalid hostlist") {
			t.Errorf("scontrol accepts %q (%q), ExpandHostlist rejects it", in, out)
		}
		compared++
	}
	// Large and generated lists.
	for _, in := range []string{"gpu[0000-2047]", "r[1-3]c[01-16]n[1-4]", "a[1-2]b[1-3]c[1-2]d[1-2]", "n[7,1-3,10-12]", "x[0-65535]"} {
		out, err := show(in)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := ExpandHostlist(in)
		if err != nil || !slices.Equal(strings.Fields(out), mine) {
			t.Errorf("%q: scontrol gives %d hosts, ExpandHostlist %d (%v)", in, len(strings.Fields(out)), len(mine), err)
		}
		compared++
	}
	t.Logf("compared %d host lists with %s", compared, scontrol)
}

func ExampleExpandHostlist() {
	hosts, _ := ExpandHostlist("gpu[001-002,010],cpu7")
	fmt.Println(hosts)
	// Output: [gpu001 gpu002 gpu010 cpu7]
}

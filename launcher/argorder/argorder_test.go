package argorder

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestFlagsFirst(t *testing.T) {
	app := &cli.App{Commands: []*cli.Command{{
		Name:  "inspect",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json"}, &cli.StringFlag{Name: "family", Aliases: []string{"f"}}},
	}, {
		Name:        "bench",
		Subcommands: []*cli.Command{{Name: "mel", Flags: []cli.Flag{&cli.IntFlag{Name: "clips"}}}},
	}}}
	for _, c := range []struct{ in, want []string }{
		{[]string{"x", "inspect", "DIR", "--json"}, []string{"x", "inspect", "--json", "DIR"}},
		{[]string{"x", "inspect", "DIR", "--family", "omni", "--json"}, []string{"x", "inspect", "--family", "omni", "--json", "DIR"}},
		{[]string{"x", "inspect", "-f=omni", "DIR"}, []string{"x", "inspect", "-f=omni", "DIR"}},
		{[]string{"x", "inspect", "DIR", "--", "--json"}, []string{"x", "inspect", "DIR", "--", "--json"}},
		{[]string{"x", "other", "DIR", "--json"}, []string{"x", "other", "DIR", "--json"}},
		{[]string{"x"}, []string{"x"}},
		{[]string{"x", "bench", "mel", "--clips", "8"}, []string{"x", "bench", "mel", "--clips", "8"}},
		{[]string{"x", "bench", "mel", "A", "--clips", "8"}, []string{"x", "bench", "mel", "--clips", "8", "A"}},
	} {
		if got := FlagsFirst(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("FlagsFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

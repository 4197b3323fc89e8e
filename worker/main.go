// Command worker runs one rank of an earl job: GRPO / SFT / ReST training
// and offline evaluation on shard directories. Training and evaluation land
// with the model, collective and GRPO work (issues 4-6); until then the
// command only says so, so that scripts fail loudly rather than silently.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "worker: train and eval are not built yet in this version of earl (see README: Status)")
	os.Exit(2)
}

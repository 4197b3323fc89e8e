package ckpt_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"earl/worker/ckpt"
)

func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	// Write float32 parameters as a bf16 Hugging Face weights directory.
	weights := []ckpt.Tensor{
		{Name: "model.norm.weight", DType: ckpt.BF16, Shape: []int{4}, Values: []float32{1, 0.5, -2, 3.14159}},
		{Name: "lm_head.weight", DType: ckpt.BF16, Shape: []int{2, 4}, Values: make([]float32, 8)},
	}
	if err := ckpt.WriteDir(filepath.Join(dir, "model"), weights, nil, 0); err != nil {
		log.Fatal(err)
	}

	// Read them back.
	d, err := ckpt.OpenDir(filepath.Join(dir, "model"))
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	for _, t := range d.Tensors() {
		fmt.Println(t.Name, t.DType, t.Shape)
	}
	norm, err := d.Float32("model.norm.weight", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(norm) // 3.14159 rounded to the nearest bf16
	// Output:
	// lm_head.weight BF16 [2 4]
	// model.norm.weight BF16 [4]
	// [1 0.5 -2 3.140625]
}

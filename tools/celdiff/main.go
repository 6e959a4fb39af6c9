// Command celdiff evaluates DRA device-selector CEL expressions with the
// Kubernetes v0.36 Go library (k8s.io/dynamic-resource-allocation/cel), the
// same compiler the kube-scheduler allocator uses. It is the reference side
// of modelplane's differential test (tests/cel).
//
// Input: JSON lines on stdin, one case each:
//
//	{"id": "...", "expression": "...", "device": {"driver": "...",
//	 "attributes": {"key": {"string"|"bool"|"int"|"version": value}},
//	 "capacity": {"key": "81559Mi"}}}
//
// Output: one JSON line per case, in input order:
//
//	{"id": "...", "compileError": str|null, "matched": bool|null, "runtimeError": str|null,
//	 "cost": int|null}
//
// cost is the runtime cost cel-go tracked for the evaluation (null when the
// expression did not compile or no details were returned).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	dracel "k8s.io/dynamic-resource-allocation/cel"
)

type attribute struct {
	String  *string `json:"string,omitempty"`
	Bool    *bool   `json:"bool,omitempty"`
	Int     *int64  `json:"int,omitempty"`
	Version *string `json:"version,omitempty"`
}

type device struct {
	Driver     string               `json:"driver"`
	Attributes map[string]attribute `json:"attributes"`
	Capacity   map[string]string    `json:"capacity"`
}

type input struct {
	ID         string `json:"id"`
	Expression string `json:"expression"`
	Device     device `json:"device"`
}

type output struct {
	ID           string  `json:"id"`
	CompileError *string `json:"compileError"`
	Matched      *bool   `json:"matched"`
	RuntimeError *string `json:"runtimeError"`
	Cost         *uint64 `json:"cost"`
}

// Feature gates as defaulted in Kubernetes 1.36: DRAConsumableCapacity is
// beta (on), DRAListTypeAttributes is alpha (off).
var features = dracel.Features{EnableConsumableCapacity: true, EnableListTypeAttributes: false}

func evaluate(cache *dracel.Cache, in input) output {
	out := output{ID: in.ID}
	result := cache.GetOrCompile(in.Expression)
	if result.Error != nil {
		msg := result.Error.Error()
		out.CompileError = &msg
		return out
	}
	dev := dracel.Device{
		Driver:     in.Device.Driver,
		Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{},
		Capacity:   map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{},
	}
	for key, a := range in.Device.Attributes {
		dev.Attributes[resourceapi.QualifiedName(key)] = resourceapi.DeviceAttribute{
			StringValue: a.String, BoolValue: a.Bool, IntValue: a.Int, VersionValue: a.Version,
		}
	}
	for key, q := range in.Device.Capacity {
		value, err := resource.ParseQuantity(q)
		if err != nil {
			msg := fmt.Sprintf("capacity %s: %v", key, err)
			out.RuntimeError = &msg
			return out
		}
		dev.Capacity[resourceapi.QualifiedName(key)] = resourceapi.DeviceCapacity{Value: value}
	}
	matched, details, err := result.DeviceMatches(context.Background(), dev)
	if details != nil {
		out.Cost = details.ActualCost()
	}
	if err != nil {
		msg := err.Error()
		out.RuntimeError = &msg
		return out
	}
	out.Matched = &matched
	return out
}

func main() {
	cache := dracel.NewCache(1000, features)
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	writer := bufio.NewWriter(os.Stdout)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var in input
		if err := json.Unmarshal(line, &in); err != nil {
			fmt.Fprintf(os.Stderr, "celdiff: bad input line: %v\n", err)
			os.Exit(2)
		}
		if err := encoder.Encode(evaluate(cache, in)); err != nil {
			fmt.Fprintf(os.Stderr, "celdiff: write: %v\n", err)
			os.Exit(2)
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "celdiff: read: %v\n", err)
		os.Exit(2)
	}
}

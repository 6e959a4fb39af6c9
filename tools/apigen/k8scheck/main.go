// Command k8scheck validates the generated CRDs and objects with Kubernetes' own code.
//
// Usage: k8scheck CRD.yaml... < objects.jsonl
//
// It first validates each CRD as the API server does on create (structural
// schema, CEL compilation and cost budget) and exits 2 on any error. Then it
// reads one JSON object per stdin line and prints, per line, a JSON list of the
// errors the API server would report: unknown fields (pruning), schema,
// list-type and x-kubernetes-validations (CEL) errors, after null pruning and
// defaulting. The Python tests compare these verdicts with modelplane.api.validation.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

type entry struct {
	s   *structuralschema.Structural
	v   apiservervalidation.SchemaValidator
	cel *cel.Validator
}

func main() {
	kinds := map[string]entry{}
	for _, f := range os.Args[1:] {
		data, _ := os.ReadFile(f)
		text := string(data)
		text = text[strings.Index(text, "---\n")+4:]
		var v1crd apiextv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict([]byte(text), &v1crd); err != nil {
			panic(err)
		}
		var crd apiextensions.CustomResourceDefinition
		apiextv1.SetObjectDefaults_CustomResourceDefinition(&v1crd)
		if err := apiextv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1crd, &crd, nil); err != nil {
			panic(err)
		}
		if errs := crdvalidation.ValidateCustomResourceDefinition(context.TODO(), &crd); len(errs) > 0 {
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, f, e.Error())
			}
			os.Exit(2)
		}
		sch := crd.Spec.Validation.OpenAPIV3Schema
		if crd.Spec.Versions[0].Schema != nil {
			sch = crd.Spec.Versions[0].Schema.OpenAPIV3Schema
		}
		s, err := structuralschema.NewStructural(sch)
		if err != nil {
			panic(err)
		}
		v, _, err := apiservervalidation.NewSchemaValidator(sch)
		if err != nil {
			panic(err)
		}
		kinds[crd.Spec.Names.Kind] = entry{s, v, cel.NewValidator(s, true, celconfig.PerCallLimit)}
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var obj map[string]interface{}
		if err := kjson.Unmarshal(sc.Bytes(), &obj); err != nil {
			panic(err)
		}
		e := kinds[obj["kind"].(string)]
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, e.s)
		structuraldefaulting.Default(obj, e.s)
		opts := structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
		pruned := structuralpruning.PruneWithOptions(obj, e.s, true, opts)
		errs := field.ErrorList{}
		for _, p := range pruned {
			errs = append(errs, field.Invalid(field.NewPath(p), nil, "unknown field"))
		}
		errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, e.v)...)
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, e.s, obj)...)
		celErrs, _ := e.cel.Validate(context.TODO(), nil, e.s, obj, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
		out := []string{}
		for _, x := range errs {
			out = append(out, x.Error())
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	}
}

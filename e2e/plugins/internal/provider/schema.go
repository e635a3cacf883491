// Package provider is the project's own resource-provider framework for the Pulumi engine.
//
// A provider is a set of resource types and functions, each described by its properties: kind,
// default, whether it is required, secret, or replaces the resource when it changes, and how it
// is validated. The framework implements the engine's gRPC protocol (Check, Diff, Create, Read,
// Update, Delete, Invoke, GetSchema) from those descriptions, with the semantics Pulumi's bridged
// providers have: defaulted inputs are stored as outputs, sensitive values are secrets, a change
// to a replace-only input replaces the resource, reads are deterministic.
package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Kind is the type of a property's value.
type Kind int

const (
	String Kind = iota
	Int
	Bool
	StringList
	StringMap
	Object
)

func (k Kind) String() string {
	return [...]string{"a string", "an integer", "a boolean", "a list of strings", "a map of strings", "an object"}[k]
}

// Replace says what a change of an input does to the resource.
type Replace int

const (
	// InPlace: the resource is updated (Resource.Update must handle the property).
	InPlace Replace = iota
	// Always: any change replaces the resource.
	Always
	// UnlessNullEmpty: any change replaces the resource, except between absent and "" (or an
	// empty list), which Terraform-based providers treat as the same value.
	UnlessNullEmpty
)

// Property describes one input or output property.
type Property struct {
	Name        string
	Kind        Kind
	Description string
	Required    bool
	// Default is stored when the input is absent (a null value means no default).
	Default resource.PropertyValue
	Replace Replace
	// Secret values are returned as secrets, in inputs and outputs alike.
	Secret bool
	// OneOf lists the accepted values of a string, or of each string of a list.
	OneOf []string
	// Min is the smallest accepted integer, when set.
	Min *int
	// Properties are an object's fields, and ObjectType the token of its type in the schema.
	Properties []Property
	ObjectType string
}

// AtLeast is a Min value.
func AtLeast(n int) *int { return &n }

// Failure is a property that does not validate, and why.
type Failure struct{ Property, Reason string }

// Resource is one resource type.
type Resource struct {
	Token       string
	Description string
	Inputs      []Property
	// Outputs are the properties the provider computes.
	Outputs []Property
	// Normalize completes defaulted inputs that depend on each other (in place) and reports
	// the combinations it refuses. Unknown values must be left alone. Optional.
	Normalize func(in resource.PropertyMap) []Failure
	// Create makes the resource from its (defaulted, secret-free) inputs: its id and outputs.
	Create func(ctx context.Context, in Values) (string, resource.PropertyMap, error)
	// Refresh recomputes the outputs that depend on time or on in-place inputs, from the
	// state: the values to change. Called when the state is read and after an in-place
	// update (an update otherwise stores the new inputs and keeps the computed outputs, as
	// Terraform-based providers do). Optional.
	Refresh func(state Values) resource.PropertyMap
	// Expired names the outputs whose value forces a replacement now, given the state and the
	// new inputs (a certificate due for renewal). Optional.
	Expired func(state, in Values) []string
	// Import reads an existing resource from its id: its id and whole state. Nil when the
	// resource cannot be imported.
	Import func(id string) (string, resource.PropertyMap, error)
}

// Function is one invoke.
type Function struct {
	Token       string
	Description string
	Inputs      []Property
	Outputs     []Property
	Normalize   func(in resource.PropertyMap) []Failure
	Call        func(in Values) (resource.PropertyMap, error)
}

// validate checks a map of values against property descriptions. Unknown values (a preview
// where an input depends on a resource not yet created) are accepted as they are.
func validate(props []Property, values resource.PropertyMap, prefix string) []Failure {
	var failures []Failure
	known := map[resource.PropertyKey]bool{}
	for _, p := range props {
		key := resource.PropertyKey(p.Name)
		known[key] = true
		v, ok := values[key]
		name := prefix + p.Name
		if !ok || v.IsNull() {
			if p.Required {
				failures = append(failures, Failure{name, "is required"})
			}
			continue
		}
		failures = append(failures, validateValue(p, plain(v), name)...)
	}
	for key := range values {
		if !known[key] && !strings.HasPrefix(string(key), "__") {
			failures = append(failures, Failure{prefix + string(key), "is not a property of this type"})
		}
	}
	slices.SortFunc(failures, func(a, b Failure) int { return strings.Compare(a.Property, b.Property) })
	return failures
}

func validateValue(p Property, v resource.PropertyValue, name string) []Failure {
	if v.ContainsUnknowns() {
		return nil
	}
	wrong := []Failure{{name, "must be " + p.Kind.String()}}
	switch p.Kind {
	case String:
		if !v.IsString() {
			return wrong
		}
		return oneOf(p, v.StringValue(), name)
	case Int:
		if !v.IsNumber() || v.NumberValue() != float64(int64(v.NumberValue())) {
			return wrong
		}
		if p.Min != nil && int(v.NumberValue()) < *p.Min {
			return []Failure{{name, fmt.Sprintf("must be at least %d, got %d", *p.Min, int(v.NumberValue()))}}
		}
	case Bool:
		if !v.IsBool() {
			return wrong
		}
	case StringList:
		if !v.IsArray() {
			return wrong
		}
		var failures []Failure
		for i, item := range v.ArrayValue() {
			item = plain(item)
			if !item.IsString() {
				return wrong
			}
			failures = append(failures, oneOf(p, item.StringValue(), fmt.Sprintf("%s[%d]", name, i))...)
		}
		return failures
	case StringMap:
		if !v.IsObject() {
			return wrong
		}
		for _, item := range v.ObjectValue() {
			if item = plain(item); !item.IsString() && !item.IsNull() {
				return wrong
			}
		}
	case Object:
		if !v.IsObject() {
			return wrong
		}
		return validate(p.Properties, v.ObjectValue(), name+".")
	}
	return nil
}

func oneOf(p Property, s, name string) []Failure {
	if len(p.OneOf) == 0 || slices.Contains(p.OneOf, s) {
		return nil
	}
	return []Failure{{name, fmt.Sprintf("must be one of %s, got %q", strings.Join(p.OneOf, ", "), s)}}
}

// withDefaults returns the values with every absent defaulted property filled in.
func withDefaults(props []Property, values resource.PropertyMap) resource.PropertyMap {
	out := values.Copy()
	for _, p := range props {
		key := resource.PropertyKey(p.Name)
		if v, ok := out[key]; (!ok || v.IsNull()) && !p.Default.IsNull() {
			out[key] = p.Default
		}
	}
	return out
}

// markSecrets wraps the values of secret properties as secrets (once).
func markSecrets(props []Property, values resource.PropertyMap) resource.PropertyMap {
	out := values.Copy()
	for _, p := range props {
		key := resource.PropertyKey(p.Name)
		if v, ok := out[key]; ok && p.Secret && !v.IsSecret() && !v.IsNull() {
			out[key] = resource.MakeSecret(v)
		}
	}
	return out
}

// only keeps the values of the named properties.
func only(props []Property, values resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for _, p := range props {
		if v, ok := values[resource.PropertyKey(p.Name)]; ok {
			out[resource.PropertyKey(p.Name)] = v
		}
	}
	return out
}

// plain is a value with every secret marker removed, for computing with it and comparing it.
func plain(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return resource.MakeComputed(resource.NewProperty(""))
		}
		return plain(o.Element)
	case v.IsObject():
		return resource.NewProperty(Plain(v.ObjectValue()))
	case v.IsArray():
		items := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, item := range v.ArrayValue() {
			items[i] = plain(item)
		}
		return resource.NewProperty(items)
	default:
		return v
	}
}

// Plain is a map with every secret marker removed.
func Plain(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = plain(v)
	}
	return out
}

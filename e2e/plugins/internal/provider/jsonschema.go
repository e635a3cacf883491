package provider

import (
	"encoding/json"
	"strings"
)

// packageSchema is the provider's Pulumi package schema, derived from its descriptions: what
// `pulumi package get-schema` and code generation (`pulumi import`) read.
func packageSchema(p *Provider) (string, error) {
	b := schemaBuilder{types: map[string]any{}}
	resources := map[string]any{}
	for _, r := range p.Resources {
		in, required := b.properties(r.Inputs)
		all, _ := b.properties(append(append([]Property{}, r.Inputs...), r.Outputs...))
		resources[r.Token] = map[string]any{
			"description":     r.Description,
			"inputProperties": in,
			"requiredInputs":  required,
			"properties":      all,
			"required":        names(r.Outputs),
		}
	}
	functions := map[string]any{}
	for _, f := range p.Functions {
		in, required := b.properties(f.Inputs)
		out, _ := b.properties(f.Outputs)
		functions[f.Token] = map[string]any{
			"description": f.Description,
			"inputs":      map[string]any{"properties": in, "required": required},
			"outputs":     map[string]any{"properties": out, "required": names(f.Outputs)},
		}
	}
	schema, err := json.Marshal(map[string]any{
		"name":      p.Name,
		"version":   p.Version,
		"resources": resources,
		"functions": functions,
		"types":     b.types,
	})
	return string(schema), err
}

type schemaBuilder struct{ types map[string]any }

func names(props []Property) []string {
	out := make([]string, len(props))
	for i, p := range props {
		out[i] = p.Name
	}
	return out
}

func (b schemaBuilder) properties(props []Property) (map[string]any, []string) {
	out := map[string]any{}
	required := []string{}
	for _, p := range props {
		spec := b.typeSpec(p)
		spec["description"] = strings.TrimSpace(p.Description)
		if len(p.OneOf) > 0 {
			spec["description"] = strings.TrimSpace(p.Description + " One of: " + strings.Join(p.OneOf, ", ") + ".")
		}
		if p.Secret {
			spec["secret"] = true
		}
		if p.Replace != InPlace {
			spec["willReplaceOnChanges"] = true
		}
		if !p.Default.IsNull() {
			spec["default"] = p.Default.V
		}
		out[p.Name] = spec
		if p.Required {
			required = append(required, p.Name)
		}
	}
	return out, required
}

func (b schemaBuilder) typeSpec(p Property) map[string]any {
	switch p.Kind {
	case Int:
		return map[string]any{"type": "integer"}
	case Bool:
		return map[string]any{"type": "boolean"}
	case StringList:
		return map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	case StringMap:
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	case Object:
		fields, _ := b.properties(p.Properties)
		b.types[p.ObjectType] = map[string]any{"type": "object", "properties": fields}
		return map[string]any{"$ref": "#/types/" + p.ObjectType}
	default:
		return map[string]any{"type": "string"}
	}
}

package provider

import "github.com/pulumi/pulumi/sdk/v3/go/common/resource"

// Values reads the (defaulted, secret-free) values a Create, Update or Call receives.
type Values resource.PropertyMap

func (m Values) get(key string) resource.PropertyValue {
	return plain(resource.PropertyMap(m)[resource.PropertyKey(key)])
}

// Has says whether the property is set.
func (m Values) Has(key string) bool { return !m.get(key).IsNull() }

// String is a string property, or "".
func (m Values) String(key string) string {
	if v := m.get(key); v.IsString() {
		return v.StringValue()
	}
	return ""
}

// Int is an integer property, or 0.
func (m Values) Int(key string) int {
	if v := m.get(key); v.IsNumber() {
		return int(v.NumberValue())
	}
	return 0
}

// Bool is a boolean property, or false.
func (m Values) Bool(key string) bool {
	if v := m.get(key); v.IsBool() {
		return v.BoolValue()
	}
	return false
}

// Strings is a list-of-strings property, or nil.
func (m Values) Strings(key string) []string {
	v := m.get(key)
	if !v.IsArray() {
		return nil
	}
	out := make([]string, 0, len(v.ArrayValue()))
	for _, item := range v.ArrayValue() {
		if item.IsString() {
			out = append(out, item.StringValue())
		}
	}
	return out
}

// Object is an object property, or an empty one.
func (m Values) Object(key string) Values {
	if v := m.get(key); v.IsObject() {
		return Values(v.ObjectValue())
	}
	return Values{}
}

// Str, Num, Flag and Strs make output values.
func Str(s string) resource.PropertyValue { return resource.NewProperty(s) }
func Num(n int) resource.PropertyValue    { return resource.NewProperty(float64(n)) }
func Flag(b bool) resource.PropertyValue  { return resource.NewProperty(b) }
func Strs(s []string) resource.PropertyValue {
	items := make([]resource.PropertyValue, len(s))
	for i, x := range s {
		items[i] = Str(x)
	}
	return resource.NewProperty(items)
}

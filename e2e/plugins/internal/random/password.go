// Package random is the project's own implementation of the pulumi-random resources the
// program uses, with upstream's inputs, defaults, outputs and replacement rules.
package random

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/bcrypt"

	"apiplatform.local/e2e/plugins/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const (
	lowerChars   = "abcdefghijklmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	numericChars = "0123456789"
	// SpecialChars is upstream's default special character set.
	SpecialChars = "!@#$%&*()-_=+[]{}<>:?"
)

var (
	yes  = provider.Flag(true)
	zero = provider.Num(0)
)

// Password is random:index/randomPassword:RandomPassword. Every input replaces the password
// (a new one is generated); `keepers` exist only for that. The id is "none", as upstream's.
var Password = &provider.Resource{
	Token:       "random:index/randomPassword:RandomPassword",
	Description: "A random password from a cryptographic random number generator; result and bcryptHash are secrets.",
	Inputs: []provider.Property{
		{Name: "keepers", Kind: provider.StringMap, Replace: provider.Always,
			Description: "Arbitrary values that, when changed, replace the password."},
		{Name: "length", Kind: provider.Int, Required: true, Replace: provider.Always, Min: provider.AtLeast(1),
			Description: "The password's length; at least minUpper + minLower + minNumeric + minSpecial."},
		{Name: "special", Kind: provider.Bool, Default: yes, Replace: provider.Always,
			Description: "Include special characters (" + SpecialChars + ", or overrideSpecial)."},
		{Name: "upper", Kind: provider.Bool, Default: yes, Replace: provider.Always},
		{Name: "lower", Kind: provider.Bool, Default: yes, Replace: provider.Always},
		{Name: "numeric", Kind: provider.Bool, Replace: provider.Always,
			Description: "Include digits (default true)."},
		{Name: "number", Kind: provider.Bool, Replace: provider.Always,
			Description: "Deprecated spelling of numeric; the two always hold the same value."},
		{Name: "minNumeric", Kind: provider.Int, Default: zero, Replace: provider.Always, Min: provider.AtLeast(0)},
		{Name: "minUpper", Kind: provider.Int, Default: zero, Replace: provider.Always, Min: provider.AtLeast(0)},
		{Name: "minLower", Kind: provider.Int, Default: zero, Replace: provider.Always, Min: provider.AtLeast(0)},
		{Name: "minSpecial", Kind: provider.Int, Default: zero, Replace: provider.Always, Min: provider.AtLeast(0)},
		{Name: "overrideSpecial", Kind: provider.String, Replace: provider.UnlessNullEmpty,
			Description: "The special characters to use instead of the default set."},
	},
	Outputs: []provider.Property{
		{Name: "result", Kind: provider.String, Secret: true, Description: "The generated password."},
		{Name: "bcryptHash", Kind: provider.String, Secret: true, Description: "A bcrypt hash of the password."},
	},
	Normalize: normalize,
	Create: func(_ context.Context, in provider.Values) (string, resource.PropertyMap, error) {
		result, err := generate(in)
		if err != nil {
			return "", nil, err
		}
		return outputs(result)
	},
	// `pulumi import random:index/randomPassword:RandomPassword NAME PASSWORD`: the id is the
	// password itself; the other inputs take their defaults, the length is the password's.
	Import: func(id string) (string, resource.PropertyMap, error) {
		if id == "" {
			return "", nil, errors.New("the import id is the password itself and cannot be empty")
		}
		_, computed, err := outputs(id)
		if err != nil {
			return "", nil, err
		}
		state := resource.PropertyMap{
			"length": provider.Num(len(id)), "special": yes, "upper": yes, "lower": yes,
			"number": yes, "numeric": yes, "minNumeric": zero, "minUpper": zero, "minLower": zero, "minSpecial": zero,
		}
		for k, v := range computed {
			state[k] = v
		}
		return "none", state, nil
	},
}

// normalize keeps numeric and its deprecated spelling number equal (both true by default)
// and checks the length against the minimums.
func normalize(in resource.PropertyMap) []provider.Failure {
	number, numeric := in["number"], in["numeric"]
	if number.ContainsUnknowns() || numeric.ContainsUnknowns() {
		return nil
	}
	var failures []provider.Failure
	switch {
	case number.IsNull() && numeric.IsNull():
		in["number"], in["numeric"] = yes, yes
	case number.IsNull():
		in["number"] = numeric
	case numeric.IsNull():
		in["numeric"] = number
	case !number.DeepEquals(numeric):
		failures = append(failures, provider.Failure{Property: "number",
			Reason: "and numeric must be equal (number is the deprecated spelling of numeric)"})
	}
	v := provider.Values(in)
	for _, k := range []string{"length", "minUpper", "minLower", "minNumeric", "minSpecial"} {
		if in[resource.PropertyKey(k)].ContainsUnknowns() {
			return failures
		}
	}
	if sum := v.Int("minUpper") + v.Int("minLower") + v.Int("minNumeric") + v.Int("minSpecial"); v.Int("length") < sum {
		failures = append(failures, provider.Failure{Property: "length",
			Reason: fmt.Sprintf("must be at least minUpper + minLower + minNumeric + minSpecial (%d), got %d", sum, v.Int("length"))})
	}
	return failures
}

func outputs(result string) (string, resource.PropertyMap, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(result), bcrypt.DefaultCost)
	if err != nil {
		return "", nil, err
	}
	return "none", resource.PropertyMap{"result": provider.Str(result), "bcryptHash": provider.Str(string(hash))}, nil
}

// generate draws each class's minimum first, fills the length from every enabled class, then
// shuffles, all from crypto/rand.
func generate(in provider.Values) (string, error) {
	special := SpecialChars
	if in.String("overrideSpecial") != "" {
		special = in.String("overrideSpecial")
	}
	classes := []struct {
		on      bool
		charset string
		min     int
	}{
		{in.Bool("upper"), upperChars, in.Int("minUpper")},
		{in.Bool("lower"), lowerChars, in.Int("minLower")},
		{in.Bool("numeric"), numericChars, in.Int("minNumeric")},
		{in.Bool("special"), special, in.Int("minSpecial")},
	}
	var all string
	var out []byte
	for _, c := range classes {
		if !c.on {
			continue
		}
		all += c.charset
		for range c.min {
			ch, err := pick(c.charset)
			if err != nil {
				return "", err
			}
			out = append(out, ch)
		}
	}
	if all == "" {
		return "", errors.New("the character set is empty: enable at least one of upper, lower, numeric, special")
	}
	for len(out) < in.Int("length") {
		ch, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, ch)
	}
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}

func pick(charset string) (byte, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(charset))))
	if err != nil {
		return 0, err
	}
	return charset[n.Int64()], nil
}

// Provider is the random provider with the resources the program uses.
func Provider(version string) *provider.Provider {
	return &provider.Provider{Name: "random", Version: version, Resources: []*provider.Resource{Password}}
}

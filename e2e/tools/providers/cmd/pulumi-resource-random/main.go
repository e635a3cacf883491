// Command pulumi-resource-random serves random:index/randomPassword:RandomPassword with the
// inputs and outputs of the published pulumi-random SDK.
package main

import (
	"crypto/rand"
	"fmt"
	"math/big"

	"golang.org/x/crypto/bcrypt"

	"apiplatform.local/e2e/providers/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

var version = "0.0.0-dev"

const (
	lowerChars   = "abcdefghijklmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	numericChars = "0123456789"
	specialChars = "!@#$%&*()-_=+[]{}<>:?"
)

type randomPassword struct{}

func (randomPassword) Computed() []string { return []string{"result", "bcryptHash"} }

func pick(charset string) (byte, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(charset))))
	if err != nil {
		return 0, err
	}
	return charset[n.Int64()], nil
}

func (randomPassword) Create(in resource.PropertyMap) (resource.PropertyMap, error) {
	length := provider.Int(in, "length", 0)
	if length < 1 {
		return nil, fmt.Errorf("length must be at least 1, got %d", length)
	}
	special := specialChars
	if o := provider.String(in, "overrideSpecial", ""); o != "" {
		special = o
	}
	classes := []struct {
		on      bool
		charset string
		min     int
	}{
		{provider.Bool(in, "lower", true), lowerChars, provider.Int(in, "minLower", 0)},
		{provider.Bool(in, "upper", true), upperChars, provider.Int(in, "minUpper", 0)},
		{provider.Bool(in, "numeric", provider.Bool(in, "number", true)), numericChars, provider.Int(in, "minNumeric", 0)},
		{provider.Bool(in, "special", true), special, provider.Int(in, "minSpecial", 0)},
	}
	var all string
	var out []byte
	for _, c := range classes {
		if !c.on {
			continue
		}
		all += c.charset
		for i := 0; i < c.min; i++ {
			ch, err := pick(c.charset)
			if err != nil {
				return nil, err
			}
			out = append(out, ch)
		}
	}
	if all == "" {
		return nil, fmt.Errorf("at least one character class must be enabled")
	}
	for len(out) < length {
		ch, err := pick(all)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	// Shuffle so the guaranteed characters are not all at the front.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return nil, err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	hash, err := bcrypt.GenerateFromPassword(out, bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return resource.PropertyMap{
		"result":     resource.MakeSecret(resource.NewStringProperty(string(out))),
		"bcryptHash": resource.MakeSecret(resource.NewStringProperty(string(hash))),
	}, nil
}

func main() {
	provider.Serve("random", version, map[string]provider.Resource{
		"random:index/randomPassword:RandomPassword": randomPassword{},
	})
}

package random

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"apiplatform.local/e2e/plugins/internal/providertest"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const version = "4.21.4"

func start(t *testing.T) *providertest.Client {
	return providertest.Start(t, Provider(version), Password.Token)
}

// The program's API keys and passwords: RandomPassword(length=40, special=False).
func programInputs() resource.PropertyMap {
	return resource.PropertyMap{"length": resource.NewProperty(40.0), "special": resource.NewProperty(false)}
}

func TestReportsThePinnedVersion(t *testing.T) {
	if v := start(t).Version(); v != version {
		t.Fatalf("version %q", v)
	}
}

func TestCheckRefusesWhatUpstreamRefuses(t *testing.T) {
	c := start(t)
	for _, tc := range []struct {
		inputs         resource.PropertyMap
		property, text string
	}{
		{resource.PropertyMap{}, "length", "is required"},
		{resource.PropertyMap{"length": resource.NewProperty(0.0)}, "length", "at least 1"},
		{resource.PropertyMap{"length": resource.NewProperty(2.5)}, "length", "must be an integer"},
		{resource.PropertyMap{"length": resource.NewProperty("40")}, "length", "must be an integer"},
		{resource.PropertyMap{"length": resource.NewProperty(3.0), "minUpper": resource.NewProperty(2.0),
			"minNumeric": resource.NewProperty(2.0)}, "length", "at least minUpper + minLower + minNumeric + minSpecial (4)"},
		{resource.PropertyMap{"length": resource.NewProperty(8.0), "minLower": resource.NewProperty(-1.0)}, "minLower", "at least 0"},
		{resource.PropertyMap{"length": resource.NewProperty(8.0), "number": resource.NewProperty(true),
			"numeric": resource.NewProperty(false)}, "number", "must be equal"},
		{resource.PropertyMap{"length": resource.NewProperty(8.0), "lenght": resource.NewProperty(8.0)}, "lenght", "is not a property"},
		{resource.PropertyMap{"length": resource.NewProperty(8.0), "keepers": resource.NewProperty(resource.PropertyMap{
			"a": resource.NewProperty(1.0)})}, "keepers", "must be a map of strings"},
	} {
		if _, failures := c.Check(tc.inputs); !providertest.Failed(failures, tc.property, tc.text) {
			t.Errorf("%v: want a failure on %s (%s), got %v", tc.inputs, tc.property, tc.text, failures)
		}
	}
	// A length not known before an apply is checked later, not refused.
	unknown := resource.PropertyMap{"length": resource.MakeComputed(resource.NewProperty("")), "minUpper": resource.NewProperty(4.0)}
	if _, failures := c.Check(unknown); len(failures) > 0 {
		t.Fatalf("unknown length refused: %v", failures)
	}
}

func TestPreviewStoresDefaultsAndLeavesTheSecretsUnknown(t *testing.T) {
	c := start(t)
	id, planned := c.Create(c.MustCheck(programInputs()), true)
	if id != "" {
		t.Fatalf("a preview has no id, got %q", id)
	}
	for _, k := range []resource.PropertyKey{"result", "bcryptHash"} {
		if !providertest.Unknown(planned[k]) {
			t.Errorf("%s is known in a preview: %v", k, planned[k])
		}
	}
	for k, want := range map[resource.PropertyKey]any{"upper": true, "lower": true, "numeric": true, "number": true,
		"special": false, "minUpper": 0.0, "minSpecial": 0.0, "length": 40.0} {
		if !planned[k].DeepEquals(resource.NewPropertyValue(want)) {
			t.Errorf("%s = %v, want %v", k, planned[k], want)
		}
	}
}

func TestCreateMakesASecretPasswordAndItsBcryptHash(t *testing.T) {
	c := start(t)
	id, state := c.Create(c.MustCheck(programInputs()), false)
	if id != "none" {
		t.Fatalf("id %q, upstream's is \"none\"", id)
	}
	result := providertest.Text(state["result"])
	if len(result) != 40 || strings.Trim(result, lowerChars+upperChars+numericChars) != "" {
		t.Fatalf("result %q: want 40 letters and digits (special=False)", result)
	}
	for _, k := range []resource.PropertyKey{"result", "bcryptHash"} {
		if !state[k].IsSecret() {
			t.Errorf("%s is not a secret", k)
		}
	}
	if err := bcrypt.CompareHashAndPassword([]byte(providertest.Text(state["bcryptHash"])), []byte(result)); err != nil {
		t.Fatalf("bcryptHash does not match the result: %v", err)
	}
	_, again := c.Create(c.MustCheck(programInputs()), false)
	if providertest.Text(again["result"]) == result {
		t.Fatal("two passwords are equal")
	}
}

func TestMinimumsAndCharacterSetsAreHonoured(t *testing.T) {
	c := start(t)
	inputs := resource.PropertyMap{
		"length": resource.NewProperty(12.0), "upper": resource.NewProperty(false), "minNumeric": resource.NewProperty(5.0),
		"minSpecial": resource.NewProperty(4.0), "overrideSpecial": resource.NewProperty("_~"),
	}
	for range 20 {
		_, state := c.Create(c.MustCheck(inputs), false)
		result := providertest.Text(state["result"])
		digits, specials := 0, 0
		for _, ch := range result {
			switch {
			case strings.ContainsRune(numericChars, ch):
				digits++
			case strings.ContainsRune("_~", ch):
				specials++
			case !strings.ContainsRune(lowerChars, ch):
				t.Fatalf("%q holds %q, outside lower, digits and the overridden specials", result, ch)
			}
		}
		if len(result) != 12 || digits < 5 || specials < 4 {
			t.Fatalf("%q: want 12 characters with at least 5 digits and 4 specials", result)
		}
	}
	only := resource.PropertyMap{"length": resource.NewProperty(4.0), "upper": resource.NewProperty(false),
		"lower": resource.NewProperty(false), "numeric": resource.NewProperty(false), "special": resource.NewProperty(false)}
	if _, _, err := c.TryCreate(c.MustCheck(only), false); err == nil || !strings.Contains(err.Error(), "character set is empty") {
		t.Fatalf("no character class: %v", err)
	}
}

func TestEveryInputReplacesThePassword(t *testing.T) {
	c := start(t)
	_, state := c.Create(c.MustCheck(programInputs()), false)
	if d := c.Diff("none", state, c.MustCheck(programInputs())); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("unchanged inputs differ: %v", d)
	}
	// Defaults stored in the state are not a change when the program leaves them out.
	for name, change := range map[string]resource.PropertyMap{
		"length":  {"length": resource.NewProperty(41.0)},
		"special": {"special": resource.NewProperty(true)},
		"keepers": {"keepers": resource.NewProperty(resource.PropertyMap{"rotation": resource.NewProperty("2026-12")})},
		"upper":   {"upper": resource.NewProperty(false)},
		"numeric": {"numeric": resource.NewProperty(false)},
	} {
		news := programInputs()
		for k, v := range change {
			news[k] = v
		}
		d := c.Diff("none", state, c.MustCheck(news))
		if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || !slices.Contains(d.GetReplaces(), name) {
			t.Errorf("changing %s: %v", name, d)
		}
		if kind := d.GetDetailedDiff()[name].GetKind(); kind != pulumirpc.PropertyDiff_UPDATE_REPLACE &&
			kind != pulumirpc.PropertyDiff_ADD_REPLACE {
			t.Errorf("changing %s: detailed diff %v", name, kind)
		}
	}
	// A keeper not known yet (a preview) may change: replace.
	news := programInputs()
	news["keepers"] = resource.MakeComputed(resource.NewProperty(""))
	if d := c.Diff("none", state, c.MustCheck(news)); !slices.Contains(d.GetReplaces(), "keepers") {
		t.Fatalf("an unknown keeper: %v", d)
	}
}

func TestSecretMarkersAloneAreNoChange(t *testing.T) {
	c := start(t)
	_, state := c.Create(c.MustCheck(programInputs()), false)
	news := programInputs()
	news["length"] = resource.MakeSecret(news["length"])
	if d := c.Diff("none", state, c.MustCheck(news)); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("a secret length differs from the same length: %v", d)
	}
}

func TestOverrideSpecialFromEmptyToAbsentIsAnUpdateNotAReplace(t *testing.T) {
	c := start(t)
	inputs := programInputs()
	inputs["overrideSpecial"] = resource.NewProperty("")
	_, state := c.Create(c.MustCheck(inputs), false)
	d := c.Diff("none", state, c.MustCheck(programInputs()))
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(d.GetReplaces()) > 0 {
		t.Fatalf("\"\" to absent: %v", d)
	}
	updated := c.Update("none", state, c.MustCheck(programInputs()), false)
	if _, ok := updated["overrideSpecial"]; ok || !updated["result"].DeepEquals(state["result"]) {
		t.Fatalf("the update must drop overrideSpecial and keep the password: %v", updated)
	}
	inputs["overrideSpecial"] = resource.NewProperty("!")
	if d := c.Diff("none", state, c.MustCheck(inputs)); !slices.Contains(d.GetReplaces(), "overrideSpecial") {
		t.Fatalf("a new special set must replace: %v", d)
	}
}

func TestReadIsStableAndKeepsSecretsSecret(t *testing.T) {
	c := start(t)
	inputs := c.MustCheck(programInputs())
	_, state := c.Create(inputs, false)
	for range 2 {
		id, read, readInputs, err := c.Read("none", state, inputs)
		if err != nil {
			t.Fatal(err)
		}
		if id != "none" || !read.DeepEquals(state) || !readInputs.DeepEquals(inputs) {
			t.Fatalf("refresh changed the password:\n%v\n%v", state, read)
		}
		if !read["result"].IsSecret() {
			t.Fatal("refresh lost the secret marker")
		}
		state = read
	}
	c.Delete("none", state)
}

func TestImportTakesThePasswordAsItsId(t *testing.T) {
	c := start(t)
	id, state, inputs, err := c.Read("s3cr3t-Value", resource.PropertyMap{}, resource.PropertyMap{})
	if err != nil {
		t.Fatal(err)
	}
	if id != "none" || providertest.Text(state["result"]) != "s3cr3t-Value" || !state["result"].IsSecret() {
		t.Fatalf("imported state: %s %v", id, state)
	}
	if !inputs["length"].DeepEquals(resource.NewProperty(12.0)) || !inputs["special"].DeepEquals(resource.NewProperty(true)) {
		t.Fatalf("imported inputs: %v", inputs)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(providertest.Text(state["bcryptHash"])), []byte("s3cr3t-Value")); err != nil {
		t.Fatal(err)
	}
	// The program's inputs then need no change but length (what `pulumi import` would report).
	d := c.Diff(id, state, c.MustCheck(resource.PropertyMap{"length": resource.NewProperty(12.0)}))
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("the imported password differs from its own inputs: %v", d)
	}
	if _, _, _, err := c.Read("", resource.PropertyMap{}, resource.PropertyMap{}); err == nil {
		t.Fatal("an empty import id was accepted")
	}
}

package provider

import (
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// diff compares the stored state with the new defaulted inputs. A value not yet known (a
// preview) counts as a change; secret markers alone do not.
func diff(r *Resource, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	resp := &pulumirpc.DiffResponse{HasDetailedDiff: true, DetailedDiff: map[string]*pulumirpc.PropertyDiff{}}
	for _, p := range r.Inputs {
		key := resource.PropertyKey(p.Name)
		o, n := plain(olds[key]), plain(news[key])
		if !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		replace := p.Replace == Always || (p.Replace == UnlessNullEmpty && !(empty(o) && empty(n)))
		resp.Diffs = append(resp.Diffs, p.Name)
		if replace {
			resp.Replaces = append(resp.Replaces, p.Name)
		}
		resp.DetailedDiff[p.Name] = &pulumirpc.PropertyDiff{Kind: kind(o, n, replace), InputDiff: true}
	}
	if r.Expired != nil {
		for _, name := range r.Expired(Values(Plain(olds)), Values(Plain(news))) {
			resp.Diffs = append(resp.Diffs, name)
			resp.Replaces = append(resp.Replaces, name)
			resp.DetailedDiff[name] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE}
		}
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_NONE
	if len(resp.Diffs) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp
}

func empty(v resource.PropertyValue) bool {
	return v.IsNull() || (v.IsString() && v.StringValue() == "") || (v.IsArray() && len(v.ArrayValue()) == 0)
}

func kind(o, n resource.PropertyValue, replace bool) pulumirpc.PropertyDiff_Kind {
	k := pulumirpc.PropertyDiff_UPDATE
	switch {
	case o.IsNull():
		k = pulumirpc.PropertyDiff_ADD
	case n.IsNull():
		k = pulumirpc.PropertyDiff_DELETE
	}
	if replace {
		return replacing[k]
	}
	return k
}

var replacing = map[pulumirpc.PropertyDiff_Kind]pulumirpc.PropertyDiff_Kind{
	pulumirpc.PropertyDiff_ADD:    pulumirpc.PropertyDiff_ADD_REPLACE,
	pulumirpc.PropertyDiff_DELETE: pulumirpc.PropertyDiff_DELETE_REPLACE,
	pulumirpc.PropertyDiff_UPDATE: pulumirpc.PropertyDiff_UPDATE_REPLACE,
}

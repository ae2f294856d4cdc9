#!/usr/bin/env bash
# memnotify status/watch --cgroup DIR on a memory cgroup the caller may not
# read: "permission denied" (exit 1), not "no memory controller".  Root
# makes a child of its own memory cgroup (v1 memory, else v2 with the
# memory controller), chmod 0700, and runs the command as nobody.
# Exit 77 (skip) with the reason when that cannot be set up here.
set -u
bin=$1
pass=0 fail=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
skip() { echo "skip: $1"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (to make a cgroup and drop to nobody)"
command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nobody test -x "$bin" || skip "nobody cannot run $bin"

# mount_of FSTYPE CONTROLLER|"": "ROOT MOUNTPOINT" of that hierarchy, from
# /proc/self/mountinfo ("id parent dev root mnt opts [tags] - type src superopts").
mount_of() {
	awk -v type="$1" -v ctl="$2" '{
		for (i = 7; i <= NF && $i != "-"; i++) ;
		if ($(i + 1) != type) next
		if (ctl != "" && ("," $(i + 3) ",") !~ ("," ctl ",")) next
		print $4, $5; exit
	}' /proc/self/mountinfo
}
# join ROOT MOUNTPOINT PATH: the directory of PATH (as /proc/self/cgroup
# gives it) when the mount shows the sub-tree ROOT.
join() {
	local root=$1 mnt=$2 path=$3
	if [ "$root" != / ] && [ "${path#"$root"}" != "$path" ]; then
		path=${path#"$root"}
	fi
	echo "$mnt${path%/}"
}

parent=
rel=$(awk -F: '("," $2 ",") ~ /,memory,/ { print $3; exit }' /proc/self/cgroup)
if [ -n "$rel" ] && read -r root mnt < <(mount_of cgroup memory) && [ -n "$mnt" ]; then
	parent=$(join "$root" "$mnt" "$rel")
	kind=v1
	[ -e "$parent/memory.usage_in_bytes" ] || parent=
fi
if [ -z "$parent" ]; then
	rel=$(awk -F: '$1 == "0" && $2 == "" { print $3; exit }' /proc/self/cgroup)
	if [ -n "$rel" ] && read -r root mnt < <(mount_of cgroup2 "") && [ -n "$mnt" ]; then
		parent=$(join "$root" "$mnt" "$rel")
		kind=v2
		# No internal processes in v2: if our group cannot give its
		# children the memory controller, go beside it.
		if ! grep -qw memory "$parent/cgroup.subtree_control" 2>/dev/null &&
			! echo +memory 2>/dev/null >"$parent/cgroup.subtree_control"; then
			parent=${parent%/*}
			grep -qw memory "$parent/cgroup.subtree_control" 2>/dev/null || parent=
		fi
	fi
fi
[ -n "$parent" ] || skip "no v1 memory hierarchy or v2 memory controller for this process"

dir=$parent/mn_cli_eacces.$$
mkdir "$dir" || skip "cannot make $dir"
trap 'rmdir "$dir" 2>/dev/null' EXIT
chmod 0700 "$dir"

# Root reads it: a memory cgroup ($kind).
if "$bin" status --cgroup "$dir" >/dev/null; then
	ok "root: status --cgroup $dir ($kind) works"
else
	bad "root: status --cgroup $dir failed"
fi
for cmd in "status" "watch --duration 1"; do
	err=$(nobody timeout 10 "$bin" $cmd --cgroup "$dir" 2>&1 >/dev/null); rc=$?
	if [ $rc -eq 1 ] && [ "$(wc -l <<<"$err")" -eq 1 ] &&
	   grep -q "permission denied" <<<"$err"; then
		ok "nobody: $cmd --cgroup (0700): exit 1: $err"
	else
		bad "nobody: $cmd --cgroup (0700): rc=$rc err=$err"
	fi
done
# Readable again: nobody watches it.
chmod 0755 "$dir"
out=$(nobody timeout 10 "$bin" watch --json --duration 0.2 --cgroup "$dir" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '"event":"memory.status"' <<<"$out"; then
	ok "nobody: watch --cgroup (0755) works"
else
	bad "nobody: watch --cgroup (0755): rc=$rc out=$out"
fi

echo "test_cli_cgroup_access: $pass passed, $fail failed"
[ $fail -eq 0 ]

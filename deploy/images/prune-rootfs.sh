#!/bin/sh
# mmdebstrap customize hook for the runner's base ($1: the new root filesystem). Debian's torch
# depends on far more than it loads (LLVM via Mesa, Perl, a test suite, sympy, ...): keep the packages
# that own a library the runtime links against (python3, its extension modules, torch, numpy) plus
# the Essential ones, purge the rest, and prove that `import torch` still works.
set -eu
root=$1
elves=$(chroot "$root" sh -c 'ls /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so \
  /usr/lib/python3/dist-packages/torch/*.so /usr/lib/python3/dist-packages/torch/lib/*.so* \
  /usr/lib/x86_64-linux-gnu/libtorch*.so.* /usr/lib/x86_64-linux-gnu/libc10*.so.* \
  $(find /usr/lib/python3/dist-packages/numpy -name "*.so") 2>/dev/null')
libs=$(for f in $elves; do chroot "$root" ldd "$f" 2>/dev/null; done | awk '/=>/ {print $3}' | sort -u)
owners=$(for l in $libs; do
  chroot "$root" dpkg -S "$l" 2>/dev/null || chroot "$root" dpkg -S "$(chroot "$root" readlink -f "$l")" 2>/dev/null || true
done | cut -d: -f1 | sort -u)
keep=$(printf '%s\n' $owners python3 python3-minimal python3.11 python3.11-minimal libpython3-stdlib \
  libpython3.11-minimal libpython3.11-stdlib python3-torch libtorch1.13 python3-numpy python3-typing-extensions \
  | sort -u)
drop=$(chroot "$root" dpkg-query -W -f '${Essential} ${Priority} ${Package}\n' \
  | awk '$1 != "yes" && $2 != "required" {print $3}' | sort -u | comm -23 - "$(printf '%s\n' $keep > "$root/tmp/keep"; echo "$root/tmp/keep")")
rm -f "$root/tmp/keep"
echo "pruning $(echo $drop | wc -w) packages that nothing loads at run time" >&2
# shellcheck disable=SC2086
chroot "$root" dpkg --purge --force-depends --force-remove-essential $drop >/dev/null 2>&1 || true
ln -sf python3 "$root/usr/bin/python"
chroot "$root" python3 -c "import torch; torch.nn.Linear(2, 2)(torch.zeros(1, 2))"

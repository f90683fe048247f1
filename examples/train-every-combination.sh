#!/usr/bin/env bash
# Smoke run of every `robustsim train` combination of scheme x method x regime (tiny: 32 images, one
# epoch, a width-4 convnet, one attack step), on Fashion-MNIST and on the CIFAR-10 fixture.
# About 5 minutes on 2 cores. Usage: bash examples/train-every-combination.sh [OUT_DIR]
# Prints one FAIL line per failing combination (with the last line of its log) and a count.
set -u
cd "$(dirname "$0")/.."
[ -f dist/src/cli/main.js ] || npx tsc -p tsconfig.json
out=${1:-out/every-combination}
rm -rf "$out" && mkdir -p "$out"

# The methods of each scheme, from the registry (src/train/methods/).
methods_of() { node --input-type=module -e "import('./dist/src/train/methods/index.js').then((m) => console.log(m.methodsFor('$1', 'at').join(' ')))"; }
combos=("sl st -" "sl pat pgd" "sl fat trades" "sl st-pat -" "sl st-fat -")
for method in $(methods_of sl); do combos+=("sl at $method"); done
for scheme in cl scl; do
  # st-* scenarios start from a standard encoder: a method only matters where it picks the fine-tuning (acl).
  combos+=("$scheme st -" "$scheme st-pat -" "$scheme st-fat -" "$scheme st-fat acl")
  for method in $(methods_of "$scheme"); do
    for regime in at pat fat; do combos+=("$scheme $regime $method"); done
  done
done

ok=0
failed=0
for dataset in fashion-mnist cifar10; do
  data=()
  [ "$dataset" = cifar10 ] && data=(--data-dir fixtures/cifar10)
  for combo in "${combos[@]}"; do
    read -r scheme regime method <<<"$combo"
    args=(--scheme "$scheme" --regime "$regime")
    [ "$method" != - ] && args+=(--method "$method")
    name="$dataset-$scheme-$regime-$method"
    if node dist/src/cli/main.js train --dataset "$dataset" "${data[@]}" --limit 32 --eval-limit 16 \
      --arch convnet --width 4 --epochs 1 --finetune-epochs 1 --batch-size 16 --steps 1 \
      "${args[@]}" --out "$out/$name" >"$out/$name.log" 2>&1; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
      echo "FAIL $name: $(tail -n 1 "$out/$name.log")"
    fi
  done
done
echo "$ok combinations trained, $failed failed (logs in $out)"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Installs the native TensorFlow backend for tfjs (@tensorflow/tfjs-node) into this project's
# node_modules without the download its own install script does (that host is not reachable here).
#
#   libtensorflow  <- Maven Central: org.tensorflow:tensorflow-core-native:<TF Java>:jar:linux-x86_64
#                     (TF Java 1.1.0 = TensorFlow 2.18.0: libtensorflow_cc.so.2, which exports the
#                     C and eager C API, and libtensorflow_framework.so.2)
#   addon source   <- npm: @tensorflow/tfjs-node@<the project's tfjs-core version> (npm pack)
#   C headers      <- deploy/native/include (the C API subset the addon uses; the jar has none)
#   addon build    <- node-gyp bundled with npm, node headers from --nodedir (/usr/include/node)
#
# Idempotent: a stamp in the installed package records what it was built from; a second run with
# the same inputs only re-checks that the addon loads. See docs/native-backend.md.
#
# Environment:
#   SUPSUPD_NATIVE_CACHE      where jars, extracted libraries and builds live
#                             (default ~/.cache/supsupd-native; keep it, the addon links to it)
#   SUPSUPD_TF_JAVA_VERSION   TF Java release to take libtensorflow from (default 1.1.0)
#   SUPSUPD_NATIVE_VARIANT    cpu (default) or gpu: gpu takes the linux-x86_64-gpu jar and installs
#                             @tensorflow/tfjs-node-gpu; it needs CUDA 12 and cuDNN 9 on the system
#   SUPSUPD_NATIVE_FORCE=1    rebuild even if the stamp matches
#   NODEDIR                   node headers root (default: npm's nodedir setting, else /usr)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/native"
CACHE="${SUPSUPD_NATIVE_CACHE:-$HOME/.cache/supsupd-native}"
TF_JAVA_VERSION="${SUPSUPD_TF_JAVA_VERSION:-1.1.0}"
VARIANT="${SUPSUPD_NATIVE_VARIANT:-cpu}"

log() { printf '[setup-native] %s\n' "$*" >&2; }
die() { printf '[setup-native] error: %s\n' "$*" >&2; exit 1; }

case "$VARIANT" in
  cpu) CLASSIFIER=linux-x86_64; PACKAGE=@tensorflow/tfjs-node ;;
  gpu) CLASSIFIER=linux-x86_64-gpu; PACKAGE=@tensorflow/tfjs-node-gpu ;;
  *) die "SUPSUPD_NATIVE_VARIANT must be cpu or gpu, not '$VARIANT'" ;;
esac
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "only linux x86_64 is supported (TF Java ships $CLASSIFIER)"

# ---- prerequisites -------------------------------------------------------------------------------
for tool in node npm mvn unzip g++ make python3 nm; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (apt-get install maven unzip g++ make python3 binutils)"
done
[ -f "$ROOT/node_modules/@tensorflow/tfjs-core/package.json" ] || die "run 'npm ci' first (node_modules/@tensorflow/tfjs-core is missing)"
[ -f "$ROOT/node_modules/@tensorflow/tfjs/package.json" ] ||
  die "@tensorflow/tfjs (a devDependency) is missing: tfjs-node requires it and must share the project's tfjs-core; run 'npm ci' without --omit=dev"
TFJS_VERSION="$(node -p "require('$ROOT/node_modules/@tensorflow/tfjs-core/package.json').version")"
NODEDIR="${NODEDIR:-$(npm config get nodedir 2>/dev/null || true)}"
case "$NODEDIR" in undefined | null | "") NODEDIR=/usr ;; esac
[ -f "$NODEDIR/include/node/node_api.h" ] || die "node headers not found under $NODEDIR/include/node (set NODEDIR, or apt-get install libnode-dev)"
NODE_GYP="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || die "node-gyp not found at $NODE_GYP (it ships with npm)"
# tfjs-node's loader (node-pre-gyp) picks the highest of its N-API versions 3..8 that node has.
NAPI="$(node -p 'Math.min(8, Number(process.versions.napi))')"

TARGET="$ROOT/node_modules/$PACKAGE"
HEADERS_HASH="$(cat "$HERE"/include/tensorflow/c/*.h "$HERE"/include/tensorflow/c/eager/*.h "$0" | sha256sum | cut -c1-16)"
STAMP="$PACKAGE@$TFJS_VERSION tf-java=$TF_JAVA_VERSION:$CLASSIFIER napi=$NAPI node=$(node -p process.versions.modules) src=$HEADERS_HASH"

verify() {
  (cd "$ROOT" && VARIANT_PACKAGE="$PACKAGE" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" node --input-type=module -e '
    import * as tf from "@tensorflow/tfjs-core";
    await import(process.env.VARIANT_PACKAGE);
    if (!(await tf.setBackend("tensorflow"))) throw new Error("tensorflow backend did not initialise");
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const y = await tf.matMul(x, x).data();
    if (y.join() !== "7,10,15,22") throw new Error(`matMul gave ${y}`);
    const binding = tf.backend().binding;
    console.log(`tfjs ${tf.version_core} on tensorflow backend, libtensorflow ${binding.TF_Version}`);
  ')
}

if [ "${SUPSUPD_NATIVE_FORCE:-0}" != 1 ] && [ -f "$TARGET/.supsupd-native-stamp" ] &&
  [ "$(cat "$TARGET/.supsupd-native-stamp")" = "$STAMP" ]; then
  log "already installed ($STAMP); checking that it loads"
  verify && exit 0
  log "installed addon does not load; rebuilding"
fi

# ---- 1. libtensorflow from Maven Central -----------------------------------------------------------
LIBDIR="$CACHE/libtensorflow-$TF_JAVA_VERSION-$CLASSIFIER"
if [ ! -f "$LIBDIR/.complete" ]; then
  JARDIR="$CACHE/jars"
  JAR="$JARDIR/tensorflow-core-native-$TF_JAVA_VERSION-$CLASSIFIER.jar"
  if [ ! -f "$JAR" ]; then
    log "fetching org.tensorflow:tensorflow-core-native:$TF_JAVA_VERSION:$CLASSIFIER with Maven"
    mvn -q -B dependency:copy \
      -Dartifact="org.tensorflow:tensorflow-core-native:$TF_JAVA_VERSION:jar:$CLASSIFIER" \
      -DoutputDirectory="$JARDIR" || die "mvn dependency:copy failed"
  fi
  log "extracting libtensorflow from $(basename "$JAR")"
  rm -rf "$LIBDIR" && mkdir -p "$LIBDIR"
  unzip -q -o -j "$JAR" "org/tensorflow/internal/c_api/$CLASSIFIER/libtensorflow_cc.so.2" \
    "org/tensorflow/internal/c_api/$CLASSIFIER/libtensorflow_framework.so.2" \
    "org/tensorflow/internal/c_api/$CLASSIFIER/LICENSE" -d "$LIBDIR"
  # The addon links with -ltensorflow -ltensorflow_framework; the sonames stay *.so.2.
  ln -sfn libtensorflow_cc.so.2 "$LIBDIR/libtensorflow.so"
  ln -sfn libtensorflow_framework.so.2 "$LIBDIR/libtensorflow_framework.so"
  # The jar is only needed once; drop the copy (Maven keeps its own in ~/.m2).
  rm -f "$JAR"
  touch "$LIBDIR/.complete"
fi

# ---- 2. the addon's source from npm ----------------------------------------------------------------
STAGE="$CACHE/build/${PACKAGE#@tensorflow/}-$TFJS_VERSION"
log "staging $PACKAGE@$TFJS_VERSION in $STAGE"
rm -rf "$STAGE" && mkdir -p "$STAGE"
TARBALL="$(cd "$STAGE" && npm pack --silent "$PACKAGE@$TFJS_VERSION" 2>/dev/null | tail -1)"
tar -xzf "$STAGE/$TARBALL" -C "$STAGE" --strip-components=1 && rm -f "$STAGE/$TARBALL"
# No install script (it downloads), no dev tooling, and no @tensorflow/tfjs of its own: it must
# resolve the project's @tensorflow/tfjs so that there is a single tfjs-core (one kernel registry).
node -e '
  const fs = require("fs");
  const file = process.argv[1];
  const p = JSON.parse(fs.readFileSync(file, "utf8"));
  delete p.scripts; delete p.devDependencies; delete p.dependencies["@tensorflow/tfjs"];
  p.gypfile = false;
  fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
' "$STAGE/package.json"
(cd "$STAGE" && npm install --silent --omit=dev --ignore-scripts --no-package-lock --no-audit --no-fund) ||
  die "npm install of $PACKAGE's dependencies failed"

# ---- 3. build the addon against the Maven libtensorflow ------------------------------------------
mkdir -p "$STAGE/deps/lib"
cp -r "$HERE/include" "$STAGE/deps/include"
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2 libtensorflow.so libtensorflow_framework.so; do
  ln -sfn "$LIBDIR/$lib" "$STAGE/deps/lib/$lib"
done
log "building the addon (node-gyp, N-API $NAPI, node headers from $NODEDIR)"
(cd "$STAGE" && node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --module_name=tfjs_binding \
  --module_path="$STAGE/lib/napi-v$NAPI" --napi_build_version="$NAPI" >"$STAGE/node-gyp.log" 2>&1) ||
  { tail -40 "$STAGE/node-gyp.log" >&2; die "node-gyp build failed (log: $STAGE/node-gyp.log)"; }
ADDON="$STAGE/lib/napi-v$NAPI/tfjs_binding.node"
[ -f "$ADDON" ] || die "node-gyp did not produce $ADDON"

# Every TF_/TFE_ function the addon imports must be exported by the Maven libraries.
missing="$(comm -23 \
  <(nm -D --undefined-only "$ADDON" | awk '{print $2}' | sed 's/@.*//' | grep -E '^TFE?_' | sort -u) \
  <(nm -D --defined-only "$LIBDIR/libtensorflow_cc.so.2" "$LIBDIR/libtensorflow_framework.so.2" |
    awk 'NF == 3 {print $3}' | sed 's/@.*//' | grep -E '^TFE?_' | sort -u))"
[ -z "$missing" ] || die "libtensorflow lacks symbols the addon needs: $missing"
rm -rf "$STAGE/build"

# ---- 4. install into the project's node_modules ----------------------------------------------------
log "installing into $TARGET"
rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
cp -a "$STAGE" "$TARGET"
printf '%s' "$STAMP" >"$TARGET/.supsupd-native-stamp"
verify
log "done: $PACKAGE loads; 'npx supsupd info' should report backend tensorflow"

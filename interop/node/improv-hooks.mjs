// Lets plain Node load improv-wifi-serial-sdk's dist files, which are
// written for bundlers: they import their siblings without the ".js"
// extension ("./util/hex-formatter"), which Node's ES module resolver
// refuses, and the package does not declare "type": "module".
//
//   node --import ./improv-hooks.mjs improv-judge.mjs ...
//
// The hook touches only imports made from inside that package: a relative
// specifier without an extension that does not resolve as written is
// retried with ".js", and the package's .js files load as ES modules.
// Nothing else is changed, and the package itself is not modified.

import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

const PKG = "/node_modules/improv-wifi-serial-sdk/";

export async function resolve(specifier, context, nextResolve) {
  const fromSDK = context.parentURL !== undefined && context.parentURL.includes(PKG);
  const relative = specifier.startsWith("./") || specifier.startsWith("../");
  let result;
  if (fromSDK && relative && !/\.[a-z]+$/i.test(specifier)) {
    try {
      result = await nextResolve(specifier, context);
    } catch (err) {
      if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
      result = await nextResolve(specifier + ".js", context);
    }
  } else {
    result = await nextResolve(specifier, context);
  }
  if (result.url.includes(PKG) && result.url.endsWith(".js")) {
    return { ...result, format: "module" };
  }
  return result;
}

// Loaded by --import on the main thread, this registers the file itself;
// Node then loads it again on its hooks thread, where it only exports.
if (isMainThread) {
  register(import.meta.url);
}

/**
 * `npm run evaluate`: the old name of `npm run loss`, kept so that earlier instructions still
 * work. It says what it does first, since a reader of the book expects "evaluate" to mean the
 * LLM judge of section 7.8, which is `npm run judge`.
 */
import { runCli } from "./common";
import { main } from "./loss";

console.error("note: `npm run evaluate` is `npm run loss`: it computes the model's loss on the data; `npm run judge` scores responses (section 7.8)");
runCli(main);

/** Transactions of the bucket object: an operation that returns a failure leaves no trace. */
import type { ItemOutcome } from "../model/records";

/** Thrown inside `transactionSync` to roll back an operation that returned a failure. */
class Rollback {
  constructor(readonly outcome: ItemOutcome) {}
}

/** Runs one operation in a transaction, rolling it back when it returns a failure. */
export function transactOutcome(storage: DurableObjectStorage, operation: () => ItemOutcome): ItemOutcome {
  try {
    return storage.transactionSync(() => {
      const outcome = operation();
      if (!outcome.ok) throw new Rollback(outcome);
      return outcome;
    });
  } catch (error) {
    if (error instanceof Rollback) return error.outcome;
    throw error;
  }
}

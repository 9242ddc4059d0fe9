package lisearch.serve;

import java.util.Collections;
import java.util.Set;
import java.util.WeakHashMap;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.analysis.PersistedView$;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.execution.command.CreateViewCommand;
import scala.Function1;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The read-only guard of {@code lisearch serve}: a Spark session extension ({@code spark.sql.extensions}) whose check
 * rule refuses, at analysis and before anything runs, every plan of a client session that writes or drops (any
 * command except SHOW, DESCRIBE, EXPLAIN, SET, RESET, USE and temporary views), calls Java methods by reflection
 * ({@code reflect}, {@code java_method}) or runs client code on the server (Python UDFs, mapInPandas/Arrow). The
 * endpoint's own session, which registers the warehouse's tables, is marked with {@link #trust} and passes.
 */
public final class ReadOnly extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {
  private static final Set<SparkSession> TRUSTED =
      Collections.synchronizedSet(Collections.newSetFromMap(new WeakHashMap<>()));
  private static final Set<String> ALLOWED_COMMANDS =
      Set.of("SetCommand", "ResetCommand", "SetCatalogAndNamespace", "SetNamespaceCommand", "SetCatalogCommand");

  /** Let {@code session} (the endpoint's own, never a client's) run any statement. */
  public static void trust(SparkSession session) {
    TRUSTED.add(session);
  }

  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectCheckRule(new AbstractFunction1<SparkSession, Function1<LogicalPlan, BoxedUnit>>() {
      @Override
      public Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
        return new AbstractFunction1<LogicalPlan, BoxedUnit>() {
          @Override
          public BoxedUnit apply(LogicalPlan plan) {
            if (!TRUSTED.contains(session)) {
              check(plan);
            }
            return BoxedUnit.UNIT;
          }
        };
      }
    });
    return BoxedUnit.UNIT;
  }

  /** Why {@code plan} is refused, as an exception; nothing when it only reads. */
  static void check(LogicalPlan plan) {
    String name = plan.getClass().getSimpleName();
    if (plan instanceof Command && !readsOnly(plan, name)) {
      throw refuse("it is a " + name + " statement, which writes or may write");
    }
    if (name.contains("Python") || name.contains("InPandas") || name.contains("InArrow")) {
      throw refuse("it runs client code on the server (" + name + ")");
    }
    for (Expression expression : CollectionConverters.asJava(plan.expressions())) {
      checkExpression(expression);
    }
    for (LogicalPlan child : CollectionConverters.asJava(plan.children())) {
      check(child);
    }
  }

  private static boolean readsOnly(LogicalPlan plan, String name) {
    if (name.startsWith("Show") || name.startsWith("Describe") || name.startsWith("Explain")) {
      return true;
    }
    if (plan instanceof CreateViewCommand view) {
      return view.viewType() != PersistedView$.MODULE$;
    }
    return ALLOWED_COMMANDS.contains(name);
  }

  private static void checkExpression(Expression expression) {
    String name = expression.getClass().getSimpleName();
    if (name.equals("CallMethodViaReflection")) {
      throw refuse("it calls reflect() or java_method(), which run Java code");
    }
    if (name.startsWith("Python")) {
      throw refuse("it runs client code on the server (" + name + ")");
    }
    for (Expression child : CollectionConverters.asJava(expression.children())) {
      checkExpression(child);
    }
  }

  private static UnsupportedOperationException refuse(String why) {
    return new UnsupportedOperationException(
        "Refused: this lisearch endpoint is read-only and " + why + ". Queries (SELECT, WITH, SHOW, DESCRIBE, "
            + "EXPLAIN) run; for statements that change tables use `lisearch sql --write` on the machine that holds "
            + "the warehouse, or start the endpoint with serve.allow_writes = true.");
  }
}

package lisearch.serve;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * Password check of the Thrift (HiveServer2) endpoint of {@code lisearch serve} ({@code
 * hive.server2.authentication = CUSTOM}): the password must equal the secret the endpoint was started with, which
 * {@code lisearch serve} passes in the environment variable {@code LISEARCH_SERVE_SECRET} (never on a command line).
 * Any user name is accepted.
 */
public final class TokenAuthenticator implements PasswdAuthenticationProvider {
  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String secret = System.getenv("LISEARCH_SERVE_SECRET");
    if (secret == null || secret.isEmpty() || password == null
        || !MessageDigest.isEqual(
            secret.getBytes(StandardCharsets.UTF_8), password.getBytes(StandardCharsets.UTF_8))) {
      throw new AuthenticationException("lisearch serve: wrong or missing password");
    }
  }
}

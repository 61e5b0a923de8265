// A JSSE client for the PKCS#11 module tests: TLS client authentication with an agent key
// through SunPKCS11 and keyward-pkcs11.so. Connects to 127.0.0.1:PORT, sends one HTTP
// request and prints the answer (openssl s_server -www shows the client certificate).
//
//   java KeywardClient.java CONFIG ALIAS CA_PEM PORT PROTOCOL     (PROTOCOL: TLSv1.2, TLSv1.3)
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509KeyManager;

public class KeywardClient {
    public static void main(String[] args) throws Exception {
        String config = args[0], alias = args[1], caPem = args[2], protocol = args[4];
        int port = Integer.parseInt(args[3]);

        Provider p11 = Security.getProvider("SunPKCS11").configure(config);
        Security.addProvider(p11);
        KeyStore keys = KeyStore.getInstance("PKCS11", p11);
        keys.load(null, "any".toCharArray());  // C_Login takes any PIN: the agent's policy decides

        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(keys, "any".toCharArray());
        X509KeyManager all = (X509KeyManager) kmf.getKeyManagers()[0];
        // The token holds several keys; the test says which one to present.
        X509ExtendedKeyManager one = new X509ExtendedKeyManager() {
            public String[] getClientAliases(String type, Principal[] issuers) { return new String[] {alias}; }
            public String chooseClientAlias(String[] types, Principal[] issuers, Socket s) { return alias; }
            public String chooseEngineClientAlias(String[] types, Principal[] issuers, SSLEngine e) { return alias; }
            public String[] getServerAliases(String type, Principal[] issuers) { return null; }
            public String chooseServerAlias(String type, Principal[] issuers, Socket s) { return null; }
            public X509Certificate[] getCertificateChain(String a) { return all.getCertificateChain(a); }
            public PrivateKey getPrivateKey(String a) { return all.getPrivateKey(a); }
        };

        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = new FileInputStream(caPem)) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);

        SSLContext ctx = SSLContext.getInstance(protocol);
        ctx.init(new X509ExtendedKeyManager[] {one}, tmf.getTrustManagers(), null);
        try (SSLSocket socket = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port)) {
            socket.setEnabledProtocols(new String[] {protocol});
            socket.startHandshake();
            System.out.println("protocol " + socket.getSession().getProtocol());
            OutputStream out = socket.getOutputStream();
            out.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            ByteArrayOutputStream page = new ByteArrayOutputStream();
            socket.getInputStream().transferTo(page);
            System.out.println(page.toString(StandardCharsets.UTF_8));
        }
    }
}

package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** What a caller sees: the library's own types, and a deadline on every call. */
class PublicApiTest {
  private static final List<Class<?>> PUBLIC_TYPES =
      List.of(
          SyncClient.class,
          Lock.class,
          LeasedLock.class,
          Campaign.class,
          Observation.class,
          SyncException.class,
          SyncException.Code.class,
          ElectionListener.class,
          Leadership.class,
          Leader.class,
          LockInfo.class,
          LockOptions.class,
          CampaignOptions.class,
          Loss.class,
          Semaphore.class,
          Permit.class,
          LeasedPermit.class,
          PermitAttempt.class,
          PermitHolder.class,
          SemaphoreInfo.class,
          ReadWriteLock.class,
          RWLockSide.class,
          RWHold.class,
          LeasedRWHold.class,
          RWAttempt.class,
          RWLockInfo.class,
          ReaderSeat.class,
          LockMode.class,
          // Not public, but their public methods are those of the holds, the semaphore and the
          // read-write lock.
          HoldsById.class,
          Hold.class,
          StreamHold.class,
          LeaseHold.class);

  /** The transport's or the generated code's types, which must not show in the API. */
  private static boolean foreign(Type type) {
    String name = type.getTypeName();
    return name.contains("io.grpc.") || name.contains("io.metaparticle.sync.v1.") || name.contains("com.google.");
  }

  @Test
  void noGrpcOrGeneratedTypeInAnyPublicSignature() {
    List<String> leaks = new ArrayList<>();
    for (Class<?> type : PUBLIC_TYPES) {
      List<Executable> members = new ArrayList<>(List.of(type.getDeclaredMethods()));
      members.addAll(List.of(type.getDeclaredConstructors()));
      for (Executable member : members) {
        if (!Modifier.isPublic(member.getModifiers()) || member.isSynthetic()) {
          continue;
        }
        List<Type> used = new ArrayList<>(List.of(member.getGenericParameterTypes()));
        used.addAll(List.of(member.getGenericExceptionTypes()));
        if (member instanceof Method method) {
          used.add(method.getGenericReturnType());
        }
        used.stream().filter(PublicApiTest::foreign).forEach(t -> leaks.add(member + " uses " + t));
      }
      for (Field field : type.getDeclaredFields()) {
        if (Modifier.isPublic(field.getModifiers()) && foreign(field.getGenericType())) {
          leaks.add(field + " is " + field.getGenericType());
        }
      }
      if (type.isRecord()) {
        for (RecordComponent component : type.getRecordComponents()) {
          if (foreign(component.getGenericType())) {
            leaks.add(type.getSimpleName() + "." + component.getName() + " is " + component.getGenericType());
          }
        }
      }
    }
    assertEquals(List.of(), leaks);
  }

  @Test
  void everyCallThatTalksToTheSidecarTakesADeadline() throws NoSuchMethodException {
    Class<?>[][] overloads = {
      {SyncClient.class, String.class, Duration.class}, // lock
      {SyncClient.class, String.class, long.class, TimeUnit.class}, // lock, acquire
      {SyncClient.class, String.class, LockOptions.class, Duration.class}, // tryLock
      {SyncClient.class, String.class, boolean.class, Duration.class}, // getLock, getLeader
      {LeasedLock.class, Duration.class, Duration.class}, // renew
      {LeasedLock.class, Duration.class}, // release
      {Lock.class, Duration.class}, // release
      {Lock.class, long.class, TimeUnit.class}, // release
      {Campaign.class, String.class, Duration.class}, // proclaim
      {Campaign.class, Duration.class}, // resign, await
      {Campaign.class, long.class, TimeUnit.class}, // await
      {Semaphore.class, Duration.class}, // acquire
      {Semaphore.class, long.class, TimeUnit.class}, // acquire
      {Semaphore.class, LockOptions.class, Duration.class}, // tryAcquire
      {Semaphore.class, String.class, Duration.class, Duration.class}, // renew by hold id
      {Semaphore.class, String.class, Duration.class}, // release by hold id
      {Permit.class, Duration.class}, // release
      {Permit.class, long.class, TimeUnit.class}, // release
      {LeasedPermit.class, Duration.class, Duration.class}, // renew
      {LeasedPermit.class, Duration.class}, // release
      {RWLockSide.class, Duration.class}, // acquire
      {RWLockSide.class, long.class, TimeUnit.class}, // acquire
      {RWLockSide.class, LockOptions.class, Duration.class}, // tryAcquire
      {ReadWriteLock.class, boolean.class, Duration.class}, // get
      {ReadWriteLock.class, String.class, Duration.class, Duration.class}, // renew by hold id
      {ReadWriteLock.class, String.class, Duration.class}, // release by hold id
      {RWHold.class, Duration.class}, // release
      {RWHold.class, long.class, TimeUnit.class}, // release
      {LeasedRWHold.class, Duration.class, Duration.class}, // renew
      {LeasedRWHold.class, Duration.class}, // release
    };
    String[][] names = {
      {"lock"},
      {"lock", "acquire"},
      {"tryLock"},
      {"getLock", "getLeader", "getSemaphore"},
      {"renew"},
      {"release"},
      {"release"},
      {"release"},
      {"proclaim"},
      {"resign", "await"},
      {"await"},
      {"acquire"},
      {"acquire"},
      {"tryAcquire"},
      {"renew"},
      {"release"},
      {"release"},
      {"release"},
      {"renew"},
      {"release"},
      {"acquire"},
      {"acquire"},
      {"tryAcquire"},
      {"get"},
      {"renew"},
      {"release"},
      {"release"},
      {"release"},
      {"renew"},
      {"release"},
    };
    for (int i = 0; i < overloads.length; i++) {
      Class<?> owner = overloads[i][0];
      Class<?>[] parameters = java.util.Arrays.copyOfRange(overloads[i], 1, overloads[i].length);
      for (String name : names[i]) {
        Method method = owner.getMethod(name, parameters);
        assertTrue(Modifier.isPublic(method.getModifiers()), method.toString());
      }
    }
    for (Constructor<?> constructor : SyncClient.class.getDeclaredConstructors()) {
      assertTrue(!Modifier.isPublic(constructor.getModifiers()), "SyncClient is made by create()");
    }
  }
}
